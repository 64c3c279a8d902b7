import net, { type AddressInfo, type Server } from 'node:net';
import { BranchStore } from './branches';
import { emulatorOptionsSchema, type EmulatorOptions, type ResolvedEmulatorOptions } from './options';
import { createPostgresFront, type PostgresFront } from './postgresFront';
import { TokenStore } from './tokens';
import { createWorkspaceApi, type InjectedFailure, type WorkspaceApi } from './workspaceApi';

export type { EmulatorOptions } from './options';

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

/**
 * A local stand-in for a Databricks workspace with Lakebase: the OAuth token endpoint (client
 * credentials and token federation, with real JWT verification against federation policies), the
 * database credential APIs, and a Postgres front that admits a login only with a valid token.
 */
export class LakebaseEmulator {
  readonly options: ResolvedEmulatorOptions;
  readonly tokens = new TokenStore();
  private readonly api: WorkspaceApi;
  private readonly front: PostgresFront;
  /** Projects, branches and endpoints (Postgres API); created branches are real copies (see branches.ts). */
  readonly branches: BranchStore;
  /** Listeners of created branches' endpoint hosts (127.0.0.N, same port as the front). */
  private readonly branchListeners = new Map<string, Server>();
  private httpPort = 0;
  private pgPort = 0;

  constructor(options: EmulatorOptions = {}) {
    this.options = emulatorOptionsSchema.parse(options);
    for (const u of this.options.users) for (const pat of u.pats) this.tokens.addPat(u.email, pat);
    this.branches = new BranchStore({
      endpoints: this.options.endpoints,
      databases: this.options.databases,
      upstream: this.options.upstream,
      rootHost: this.options.postgres.host,
      projectManagers: this.options.projectManagers,
      listen: async (host) => {
        const s = net.createServer((socket) => this.front.accept(socket));
        await listen(s, host, this.pgPort);
        this.branchListeners.set(host, s);
      },
      unlisten: (host) => {
        this.branchListeners.get(host)?.close();
        this.branchListeners.delete(host);
      },
    });
    this.api = createWorkspaceApi(this.options, this.tokens, () => this.workspaceUrl, this.branches);
    this.front = createPostgresFront(this.tokens, this.options.upstream, {
      passwordRoles: this.options.passwordRoles,
      wakeDelayMs: this.options.scaleToZero?.wakeDelayMs,
      routeDatabase: (local, db) => this.branches.routeDatabase(local, db),
    });
  }

  async start(): Promise<this> {
    this.httpPort = await listen(this.api.server, this.options.http.host, this.options.http.port);
    this.pgPort = await listen(this.front.server, this.options.postgres.host, this.options.postgres.port);
    return this;
  }

  async stop(): Promise<void> {
    this.api.server.closeAllConnections();
    this.front.closeAll();
    await this.branches.discard();
    await Promise.all(
      [this.api.server, this.front.server, ...this.branchListeners.values()].map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))),
    );
  }

  /** Base URL of the emulated workspace (use as `workspaceHost`). */
  get workspaceUrl(): string {
    return `http://${this.options.http.host}:${this.httpPort}`;
  }

  get postgres(): { host: string; port: number } {
    return { host: this.options.postgres.host, port: this.pgPort };
  }

  /** Requests per endpoint path, e.g. `/oidc/v1/token`. */
  requests(path: string): number {
    return this.api.counts.get(path) ?? 0;
  }

  get logins(): { accepted: number; refused: number } {
    return { ...this.front.logins };
  }

  /** Scale to zero: suspend the compute now; the next connection wakes it after scaleToZero.wakeDelayMs. */
  suspendCompute(): void {
    this.front.suspend();
  }

  get compute(): PostgresFront['compute'] {
    return { ...this.front.compute };
  }

  failNext(path: string, failure: InjectedFailure): void {
    this.api.failNext(path, failure);
  }

  setTokenTtl(seconds: number): void {
    this.api.setTokenTtl(seconds);
  }
}
