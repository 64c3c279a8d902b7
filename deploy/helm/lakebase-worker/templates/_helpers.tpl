{{- define "lakebase-worker.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lakebase-worker.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lakebase-worker.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "lakebase-worker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "lakebase-worker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lakebase-worker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: worker
{{- end -}}

{{- define "lakebase-worker.codecSelectorLabels" -}}
app.kubernetes.io/name: {{ include "lakebase-worker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: codec-server
{{- end -}}

{{- define "lakebase-worker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "lakebase-worker.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "lakebase-worker.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The worker's lakebase.yaml: the user's config with the settings the chart owns. */}}
{{- define "lakebase-worker.config" -}}
{{- $worker := dict "opsPort" (int .Values.metrics.port) "shutdownGraceTime" (printf "%d seconds" (int .Values.drain.graceSeconds)) -}}
{{- if gt (int .Values.metrics.sdkPort) 0 -}}
{{- $_ := set $worker "sdkMetricsAddress" (printf "0.0.0.0:%d" (int .Values.metrics.sdkPort)) -}}
{{- end -}}
{{- $config := mergeOverwrite (deepCopy .Values.config) (dict "worker" $worker) -}}
{{- toYaml $config -}}
{{- end -}}
