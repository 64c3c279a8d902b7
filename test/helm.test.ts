// The Helm chart (deploy/helm/lakebase-worker): `helm lint` and `helm template` for the default
// values, a values file that turns every option on and the CPU-autoscaling variant, then checks on
// the rendered objects. Helm comes from the Go module proxy (scripts/build-tools.ts, run by .ci/run);
// without it these tests skip with that reason.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { parseConfigText } from '../src/config/load';
import { findGoTool, missingGoTool } from '../src/provision/goTools';

const run = promisify(execFile);
const CHART = path.join(__dirname, '..', 'deploy', 'helm', 'lakebase-worker');
const ALL_ON = path.join(CHART, 'ci', 'all-on-values.yaml');
const HPA = path.join(CHART, 'ci', 'hpa-values.yaml');
const skip = missingGoTool('helm');

interface K8sObject { apiVersion: string; kind: string; metadata: { name: string }; spec?: Record<string, unknown>; data?: Record<string, string> }
interface EnvVar { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }
interface Container {
  name: string; args: string[]; env?: EnvVar[]; envFrom?: { secretRef?: { name: string } }[];
  ports: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet?: { path: string; port: string }; tcpSocket?: { port: string } };
  readinessProbe?: { httpGet?: { path: string; port: string }; tcpSocket?: { port: string } };
  securityContext: { readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean; capabilities: { drop: string[] } };
  volumeMounts: { name: string; mountPath: string }[];
}
interface PodSpec { containers: Container[]; securityContext: { runAsNonRoot: boolean; runAsUser: number }; terminationGracePeriodSeconds?: number; volumes: { name: string; emptyDir?: object }[] }

async function helm(...args: string[]): Promise<string> {
  const { stdout } = await run(findGoTool('helm')!, args, { maxBuffer: 16 << 20 });
  return stdout;
}

async function render(...values: string[]): Promise<K8sObject[]> {
  const text = await helm('template', 'lbw', CHART, ...values.flatMap((v) => ['-f', v]));
  return parseAllDocuments(text).map((d) => d.toJS() as K8sObject | null).filter((o): o is K8sObject => o !== null);
}

const kinds = (objs: K8sObject[]) => objs.map((o) => o.kind).sort();
const one = (objs: K8sObject[], kind: string, name?: string) => {
  const found = objs.filter((o) => o.kind === kind && (!name || o.metadata.name === name));
  assert.equal(found.length, 1, `exactly one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
};
const pod = (d: K8sObject) => (d.spec as { template: { spec: PodSpec } }).template.spec;

/** Checks every rendered Deployment: non-root, read-only root, probes, and where secrets come from. */
function checkDeployments(objs: K8sObject[]): void {
  for (const d of objs.filter((o) => o.kind === 'Deployment')) {
    const spec = pod(d);
    assert.equal(spec.securityContext.runAsNonRoot, true, `${d.metadata.name}: runAsNonRoot`);
    assert.notEqual(spec.securityContext.runAsUser, 0);
    for (const c of spec.containers) {
      assert.equal(c.securityContext.readOnlyRootFilesystem, true, `${c.name}: read-only root filesystem`);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
      assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
      const tmp = c.volumeMounts.find((m) => m.mountPath === '/tmp');
      assert.ok(tmp && spec.volumes.find((v) => v.name === tmp.name)?.emptyDir, `${c.name}: /tmp is the only writable place (emptyDir)`);
      assert.ok(c.livenessProbe && c.readinessProbe, `${c.name}: probes`);
      for (const e of c.env ?? []) {
        if (/SECRET|TOKEN|PASSWORD|KEY/.test(e.name)) assert.ok(e.valueFrom?.secretKeyRef && e.value === undefined, `${c.name}: ${e.name} comes from a Secret, not a value`);
      }
    }
  }
}

/** The worker's lakebase.yaml from the ConfigMap: valid for the worker, secrets only as ${ENV}. */
function checkConfig(objs: K8sObject[], worker: Container): ReturnType<typeof parseConfigText> {
  const text = one(objs, 'ConfigMap').data!['lakebase.yaml']!;
  const refs = [...text.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]!);
  const supplied = new Set((worker.env ?? []).map((e) => e.name));
  const fromSecret = (worker.envFrom ?? []).some((e) => e.secretRef?.name);
  for (const r of refs) assert.ok(supplied.has(r) || fromSecret, `\${${r}} is supplied by the pod (env or envFrom)`);
  for (const m of text.matchAll(/^\s*(token|clientSecret|password|apiKey|key):\s*(.*)$/gm)) {
    if (m[1] === 'key' && m[2]!.startsWith('-')) continue;
    assert.match(m[2]!, /^\$\{\w+\}$/, `${m[1]} in the ConfigMap is a reference, not a value`);
  }
  return parseConfigText(text, 'lakebase.yaml', Object.fromEntries(refs.map((r) => [r, `value-of-${r}`])));
}

describe('Helm chart', { skip }, () => {
  test('helm lint passes for the default values, every option on, and CPU autoscaling', async () => {
    for (const values of [[], ['-f', ALL_ON], ['-f', HPA]]) {
      const out = await helm('lint', CHART, ...values);
      assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  test('default values: the worker Deployment with its ConfigMap, metrics Service, PDB; probes, drain, security', async () => {
    const objs = await render();
    assert.deepEqual(kinds(objs), ['ConfigMap', 'Deployment', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
    const deploy = one(objs, 'Deployment');
    assert.equal((deploy.spec as { replicas: number }).replicas, 2);
    const spec = pod(deploy);
    const worker = spec.containers[0]!;
    assert.deepEqual(worker.args, ['worker', '--config', '/config/lakebase.yaml']);
    const config = checkConfig(objs, worker);
    const metricsPort = worker.ports.find((p) => p.name === 'metrics')!.containerPort;
    assert.equal(config.worker.opsPort, metricsPort, 'the probes hit the port the worker serves');
    assert.deepEqual(worker.livenessProbe!.httpGet, { path: '/healthz', port: 'metrics' });
    assert.deepEqual(worker.readinessProbe!.httpGet, { path: '/readyz', port: 'metrics' });
    const grace = Number(/^(\d+) seconds$/.exec(config.worker.shutdownGraceTime)?.[1]);
    assert.ok(spec.terminationGracePeriodSeconds! > grace, `terminationGracePeriodSeconds ${spec.terminationGracePeriodSeconds} leaves room past the drain (${grace} s)`);
    checkDeployments(objs);
    const svc = one(objs, 'Service');
    assert.deepEqual((svc.spec as { ports: { name: string }[] }).ports.map((p) => p.name), ['metrics', 'sdk-metrics']);
    assert.equal((one(objs, 'PodDisruptionBudget').spec as { maxUnavailable: number }).maxUnavailable, 1);
  });

  test('every option on: ServiceMonitor, codec server, KEDA on the task queue backlog; still no secret in plain text', async () => {
    const objs = await render(ALL_ON);
    assert.deepEqual(kinds(objs), ['ConfigMap', 'Deployment', 'Deployment', 'NetworkPolicy', 'NetworkPolicy', 'PodDisruptionBudget', 'ScaledObject', 'Service', 'Service', 'ServiceAccount', 'ServiceMonitor']);
    // Ingress to the worker and to the codec server only on their ports, only from the listed sources.
    const policies = objs.filter((o) => o.kind === 'NetworkPolicy').map((o) => o.spec as { podSelector: { matchLabels: Record<string, string> }; ingress: { ports: { port: number }[] }[] });
    assert.deepEqual(policies.map((p) => p.ingress.flatMap((i) => i.ports.map((x) => x.port))), [[9464, 9465], [8888]]);
    assert.ok(policies.every((p) => Object.keys(p.podSelector.matchLabels).length > 0), 'each policy selects its own pods');
    assert.ok(!objs.some((o) => o.kind === 'Secret'), 'the chart never renders a Secret');
    checkDeployments(objs);
    const worker = one(objs, 'Deployment', 'lbw-lakebase-worker');
    assert.equal((worker.spec as { replicas?: number }).replicas, undefined, 'the autoscaler owns the replica count');
    const container = pod(worker).containers[0]!;
    const config = checkConfig(objs, container);
    assert.equal(config.temporal.apiKey, 'value-of-TEMPORAL_API_KEY');
    assert.equal(pod(worker).terminationGracePeriodSeconds, 330, 'drain 300 s + margin 30 s');
    assert.ok(container.volumeMounts.some((m) => m.mountPath === '/secrets/replica'), 'secret files are mounted');

    const codec = pod(one(objs, 'Deployment', 'lbw-lakebase-worker-codec')).containers[0]!;
    assert.deepEqual(codec.args.slice(0, 5), ['codec-server', '--port', '8888', '--token-file', '/secrets/codec/token']);
    assert.deepEqual(codec.env, [{ name: 'LAKEBASE_SECRET_KEYS', valueFrom: { secretKeyRef: { name: 'lakebase-payload-keys', key: 'keys' } } }]);
    assert.ok(objs.some((o) => o.kind === 'Service' && o.metadata.name === 'lbw-lakebase-worker-codec'));

    const scaled = one(objs, 'ScaledObject').spec as { triggers: { type: string; metadata: Record<string, string>; authenticationRef: { name: string } }[] };
    assert.equal(scaled.triggers[0]!.type, 'temporal');
    assert.deepEqual(scaled.triggers[0]!.metadata, { endpoint: 'example.tmprl.cloud:7233', namespace: 'lakebase.a1b2c', taskQueue: 'lakebase-prod', targetQueueSize: '10' });
    assert.equal(scaled.triggers[0]!.authenticationRef.name, 'temporal-cloud-api-key');
    const monitor = one(objs, 'ServiceMonitor').spec as { endpoints: { port: string }[] };
    assert.deepEqual(monitor.endpoints.map((e) => e.port), ['metrics', 'sdk-metrics']);
  });

  test('CPU autoscaling renders an HPA; KEDA and the HPA together are refused', async () => {
    const objs = await render(HPA);
    const hpa = one(objs, 'HorizontalPodAutoscaler').spec as { metrics: { resource: { name: string; target: { averageUtilization: number } } }[] };
    assert.equal(hpa.metrics[0]!.resource.name, 'cpu');
    assert.equal(hpa.metrics[0]!.resource.target.averageUtilization, 60);
    const both = await helm('template', 'lbw', CHART, '-f', ALL_ON, '-f', HPA).then(() => '', (e: { stderr: string }) => e.stderr);
    assert.match(both, /enable either keda or hpa, not both/);
  });

  test("the worker's V8 heap limit: set from heapLimitMb (below the pod's memory limit), unset with 0, the user's own NODE_OPTIONS kept", async () => {
    const nodeOptions = async (...args: string[]) => {
      const text = await helm('template', 'lbw', CHART, ...args);
      const objs = parseAllDocuments(text).map((d) => d.toJS() as K8sObject | null).filter((o): o is K8sObject => o !== null);
      return (pod(one(objs, 'Deployment')).containers[0]!.env ?? []).filter((e) => e.name === 'NODE_OPTIONS').map((e) => e.value);
    };
    assert.deepEqual(await nodeOptions(), ['--max-old-space-size=512']);
    const limit = (await render()).map((o) => o.kind === 'Deployment' && (pod(o).containers[0] as unknown as { resources: { limits: { memory: string } } }).resources.limits.memory).find(Boolean);
    assert.equal(limit, '1Gi', 'the default heap limit is half of the default memory limit');
    assert.deepEqual(await nodeOptions('--set', 'heapLimitMb=0'), []);
    assert.deepEqual(await nodeOptions('--set', 'env[0].name=NODE_OPTIONS', '--set-string', 'env[0].value=--max-old-space-size=300'), ['--max-old-space-size=300']);
    const refused = await helm('template', 'lbw', CHART, '--set', 'heapLimitMb=-1').then(() => '', (e: { stderr: string }) => e.stderr);
    assert.match(refused, /heapLimitMb/);
  });

  test('a secret written into the values is refused: inline config secrets and secret-looking plain env', async () => {
    const refused = (args: string[]) => helm('template', 'lbw', CHART, ...args).then(() => '', (e: { stderr: string }) => e.stderr);
    assert.match(await refused(['--set-string', 'config.profiles.analytics.auth.clientSecret=s3cr3t']), /\/config\/profiles\/analytics\/auth\/clientSecret': 's3cr3t' does not match/);
    assert.match(await refused(['--set-string', 'config.temporal.apiKey=abc']), /\/config\/temporal\/apiKey/);
    assert.match(await refused(['--set-string', 'config.temporal.tls.key=-----BEGIN']), /\/config\/temporal\/tls\/key/);
    assert.match(await refused(['--set-string', 'env[0].name=DATABRICKS_TOKEN', '--set-string', 'env[0].value=dapi123']), /\/env\/0\/name/);
    // A pipeline's key columns are not a secret.
    assert.equal(await refused(['-f', ALL_ON]), '');
  });
});
