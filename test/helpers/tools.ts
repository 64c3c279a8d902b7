import { spawnSync } from 'node:child_process';

/**
 * Why a test that needs a Debian tool cannot run here, or false when the tool is on PATH.
 * `.ci/run` installs them; the README's plain `npm test` on a fresh machine may not have them,
 * and a missing optional tool is a skip with its reason, never a failure.
 */
export function missingTool(command: string, debianPackage = command): string | false {
  const found = spawnSync('sh', ['-c', `command -v "$1"`, 'sh', command], { stdio: 'ignore' }).status === 0;
  return found ? false : `${command} is not installed (apt-get install ${debianPackage}; .ci/run installs it)`;
}
