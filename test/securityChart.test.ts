// The chart's security wiring (issue 30): seal keys only from a Secret and only on workers, and
// NetworkPolicies on the ops port and the codec server. Needs helm (scripts/build-tools.ts).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { findGoTool, missingGoTool } from '../src/provision/goTools';

const run = promisify(execFile);
const CHART = path.join(__dirname, '..', 'deploy', 'helm', 'lakebase-worker');
const ALL_ON = path.join(CHART, 'ci', 'all-on-values.yaml');
const skip = missingGoTool('helm');

interface EnvVar { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }
interface K8s { kind: string; metadata: { name: string }; spec?: { template?: { spec: { containers: { name: string; env?: EnvVar[] }[] } }; podSelector?: { matchLabels: Record<string, string> }; policyTypes?: string[]; ingress?: { from: unknown[]; ports: { port: number }[] }[] } }

async function render(...args: string[]): Promise<K8s[]> {
  const { stdout } = await run(findGoTool('helm')!, ['template', 'lbw', CHART, ...args], { maxBuffer: 16 << 20 });
  return parseAllDocuments(stdout).map((d) => d.toJS() as K8s | null).filter((o): o is K8s => o !== null);
}
const containers = (objs: K8s[], kind: string, name: string) => objs.find((o) => o.kind === kind && o.metadata.name === name)!.spec!.template!.spec.containers;

describe('Helm chart: seal keys from a Secret, NetworkPolicies', { skip }, () => {
  test('LAKEBASE_SEAL_PRIVATE_KEYS comes from the named Secret, on workers only', async () => {
    const objs = await render('-f', ALL_ON);
    const worker = containers(objs, 'Deployment', 'lbw-lakebase-worker').find((c) => c.name === 'worker')!;
    assert.deepEqual(worker.env!.find((e) => e.name === 'LAKEBASE_SEAL_PRIVATE_KEYS'), { name: 'LAKEBASE_SEAL_PRIVATE_KEYS', valueFrom: { secretKeyRef: { name: 'lakebase-seal-keys', key: 'private' } } });
    for (const c of containers(objs, 'Deployment', 'lbw-lakebase-worker-codec'))
      assert.ok(!(c.env ?? []).some((e) => e.name.startsWith('LAKEBASE_SEAL')), 'the codec server must not hold seal keys');
    // Default values: no seal keys named, none wired.
    const plain = containers(await render(), 'Deployment', 'lbw-lakebase-worker')[0]!;
    assert.ok(!(plain.env ?? []).some((e) => e.name === 'LAKEBASE_SEAL_PRIVATE_KEYS'));
  });

  test('a seal key written into values is refused by the schema', async () => {
    await assert.rejects(render('--set', 'sealing.privateKeys=MC4CAQAwBQYDK2VuBCIEI'), /additional properties 'privateKeys' not allowed/);
    await assert.rejects(render('--set-json', 'env=[{"name":"LAKEBASE_SEAL_PRIVATE_KEYS","value":"x"}]'), /at '\/env\/0\/name'/);
  });

  test('NetworkPolicies admit only the ops ports to workers and the codec port to the codec server', async () => {
    const objs = await render('-f', ALL_ON);
    const policies = objs.filter((o) => o.kind === 'NetworkPolicy');
    const worker = policies.find((p) => p.metadata.name === 'lbw-lakebase-worker')!;
    assert.deepEqual(worker.spec!.policyTypes, ['Ingress']);
    assert.deepEqual(worker.spec!.ingress!.flatMap((r) => r.ports.map((p) => p.port)).sort(), [9464, 9465]);
    const codec = policies.find((p) => p.metadata.name === 'lbw-lakebase-worker-codec')!;
    assert.deepEqual(codec.spec!.ingress!.flatMap((r) => r.ports.map((p) => p.port)), [8888]);
    assert.notDeepEqual(worker.spec!.podSelector, codec.spec!.podSelector);
    assert.equal((await render('--set', 'networkPolicy.enabled=false')).filter((o) => o.kind === 'NetworkPolicy').length, 0);
  });
});
