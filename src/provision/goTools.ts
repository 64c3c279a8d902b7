// Helm and promtool, for the chart and alert-rule tests: found like the Temporal CLI ($HELM or
// $PROMTOOL, the project cache beside the Temporal CLI, then PATH) and built from the Go module
// proxy into that cache by `scripts/build-tools.ts` (which .ci/run calls). Tests never build them
// (about 5 minutes each on 2 cores): they skip with the reason instead.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { cacheDir, type Say } from './temporal';

export const GO_TOOLS = {
  helm: { module: 'helm.sh/helm/v3/cmd/helm', version: 'v3.22.0', env: 'HELM' },
  promtool: { module: 'github.com/prometheus/prometheus/cmd/promtool', version: 'v0.316.0', env: 'PROMTOOL' },
} as const;

export type GoTool = keyof typeof GO_TOOLS;

function onPath(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() || undefined : undefined;
}

export function cachedGoToolPath(tool: GoTool): string {
  return path.join(cacheDir(), 'bin', tool);
}

/** The tool's executable, or undefined when it is neither configured, cached nor on PATH. */
export function findGoTool(tool: GoTool): string | undefined {
  const fromEnv = process.env[GO_TOOLS[tool].env];
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  const cached = cachedGoToolPath(tool);
  return existsSync(cached) ? cached : onPath(tool);
}

/** Why a test that needs the tool cannot run (for `{ skip }`), or false when it is there. */
export function missingGoTool(tool: GoTool): string | false {
  if (findGoTool(tool)) return false;
  const t = GO_TOOLS[tool];
  const configured = process.env[t.env] ? ` ($${t.env}=${process.env[t.env]} does not exist)` : '';
  return `${tool} is not installed${configured}; build it with \`node --import tsx scripts/build-tools.ts ${tool}\` ` +
    `(go install ${t.module}@${t.version} into ${path.dirname(cachedGoToolPath(tool))}; .ci/run does this)`;
}

function goBinary(): string | undefined {
  return onPath('go') ?? (existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
}

/** Finds the tool or builds the pinned version with Go into the cache; rejects when it cannot. */
export async function provisionGoTool(tool: GoTool, say: Say = () => undefined): Promise<string> {
  const found = findGoTool(tool);
  if (found) return found;
  const go = goBinary();
  if (!go) throw new Error(`${tool} is not installed and Go is not either (install Go, or put ${tool} on PATH)`);
  const t = GO_TOOLS[tool];
  const target = cachedGoToolPath(tool);
  await mkdir(path.dirname(target), { recursive: true });
  say(`Building ${tool} ${t.version} with Go into ${path.dirname(target)} (a few minutes, once)…`);
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', `${t.module}@${t.version}`], { env: { ...process.env, GOBIN: path.dirname(target) }, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`go install ${t.module}@${t.version} exited with ${code}`))));
  });
  say(`${tool} built in ${Math.round((Date.now() - started) / 1000)} s: ${target}`);
  return target;
}
