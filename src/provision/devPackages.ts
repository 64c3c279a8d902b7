// The demo, the emulator and the throwaway PostgreSQL run on packages a production install
// (`npm ci --omit=dev`, the worker image) leaves out. They are loaded only when one of those runs,
// so the worker never needs them, and their absence is an error that says how to get them.
type DevPackages = {
  'pg-gateway': typeof import('pg-gateway');
  '@temporalio/testing': typeof import('@temporalio/testing');
};

export class DevPackageMissing extends Error {
  override readonly name = 'DevPackageMissing';
}

export function devPackageMissing(pkg: string, forWhat: string): DevPackageMissing {
  return new DevPackageMissing(
    `${forWhat} needs the npm package ${pkg}, a development dependency that this install left out ` +
      `(npm ci --omit=dev, or the worker image): run it from a clone after a plain \`npm ci\`` +
      (forWhat === 'the Lakebase emulator' ? ', or use the emulator image (docker-compose.yml, Dockerfile target emulator)' : ''),
  );
}

export function devPackage<N extends keyof DevPackages>(pkg: N, forWhat: string): DevPackages[N] {
  try {
    return require(pkg) as DevPackages[N];
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'MODULE_NOT_FOUND' && e.message.includes(`'${pkg}'`)) throw devPackageMissing(pkg, forWhat);
    throw err;
  }
}
