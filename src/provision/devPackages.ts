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

/** `hint`: another way to get what `forWhat` is, said after the fix. */
export function devPackage<N extends keyof DevPackages>(pkg: N, forWhat: string, hint?: string): DevPackages[N] {
  try {
    return require(pkg) as DevPackages[N];
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'MODULE_NOT_FOUND' && e.message.includes(`'${pkg}'`))
      throw new DevPackageMissing(
        `${forWhat} needs the npm package ${pkg}, a development dependency that this install left out ` +
          `(npm ci --omit=dev, or the worker image): run it from a clone after a plain \`npm ci\`${hint ? `, or ${hint}` : ''}`,
      );
    throw err;
  }
}
