// OpenTelemetry for CLI commands, started as main.ts loads (before any command module loads `pg`,
// which the pg instrumentation patches as it is required) and only when the OTEL_* variables ask:
// otherwise the SDK is not even loaded.
import { tracingRequested } from '../telemetry/tracingSwitch';

/* eslint-disable-next-line @typescript-eslint/no-require-imports */
export const tracing = tracingRequested() ? (require('../telemetry/tracing') as typeof import('../telemetry/tracing')).startTracing() : undefined;
