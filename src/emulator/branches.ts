import { createHash, randomUUID } from 'node:crypto';
import pg from 'pg';

/**
 * Lakebase Autoscaling projects, branches and endpoints, as the Postgres API documents them, over
 * one real PostgreSQL. A root branch (named by the emulator's `endpoints`) serves the upstream
 * databases as they are. A created branch is a real copy: each database listed in `databases` is
 * copied, when the branch is created, into its own upstream database, and the branch's endpoint
 * gets its own loopback host (127.0.0.N, same port) so the Postgres front can tell which branch a
 * login is for — as each real endpoint has its own host.
 *
 * Differences from Lakebase (which branches by copy-on-write, instantly, at any size, without
 * touching the parent's sessions): the copy is `CREATE DATABASE … TEMPLATE`, which needs the parent
 * database to itself, so the parent's open sessions are ended (their clients reconnect), and it
 * takes time proportional to the data; only the listed databases are copied; roles are not (every session is the upstream user);
 * expiry (`spec.ttl`) is recorded, not enforced; one compute state is shared by all branches.
 */

export interface EmulatedEndpoint {
  name: string;
  type: string;
}

export interface EmulatedBranch {
  name: string;
  project: string;
  id: string;
  uid: string;
  root: boolean;
  source?: string;
  createTime: string;
  expireTime?: string;
  state: 'INIT' | 'READY';
  host: string;
  endpoints: Map<string, EmulatedEndpoint>;
}

export type Reply = { status: number; body: unknown };

interface OperationState {
  done: boolean;
  error?: { error_code: string; message: string };
  response?: unknown;
}

export interface BranchStoreOptions {
  /** Root endpoints, projects/{p}/branches/{b}/endpoints/{e}: their projects and branches exist from the start. */
  endpoints: string[];
  /** Upstream databases a created branch copies from its parent. */
  databases: string[];
  upstream: string;
  /** Host the root branches' endpoints answer on (the front's). */
  rootHost: string;
  /** If set, only these identities may create or delete branches and endpoints (CAN MANAGE); others get 403. */
  projectManagers?: string[];
  /** Starts / stops the front on a branch endpoint's host (same port). */
  listen(host: string): Promise<void>;
  unlisten(host: string): void;
}

const notFound = (what: string): Reply => ({ status: 404, body: { error_code: 'NOT_FOUND', message: `${what} not found.` } });
const invalid = (message: string): Reply => ({ status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE', message } });
const READ_WRITE = 'ENDPOINT_TYPE_READ_WRITE';
const ID = /^[a-z][a-z0-9-]{0,62}$/;
const q = (ident: string) => `"${ident.replace(/"/g, '""')}"`;

export class BranchStore {
  private readonly branches = new Map<string, EmulatedBranch>();
  private readonly projects = new Set<string>();
  private readonly operations = new Map<string, OperationState>();
  private nextHost = 2;
  /** Names of branches created through the API, in order (tests count them). */
  readonly created: string[] = [];
  private copyFailure?: { error_code: string; message: string };

  constructor(private readonly opts: BranchStoreOptions) {
    for (const e of opts.endpoints) {
      const [, project, , branch, , id] = e.split('/');
      const name = `projects/${project}/branches/${branch}`;
      this.projects.add(project!);
      let b = this.branches.get(name);
      if (!b) {
        b = { name, project: project!, id: branch!, uid: randomUUID(), root: true, createTime: new Date().toISOString(), state: 'READY', host: opts.rootHost, endpoints: new Map() };
        this.branches.set(name, b);
      }
      b.endpoints.set(e, { name: e, type: READ_WRITE });
      void id;
    }
  }

  list(): EmulatedBranch[] {
    return [...this.branches.values()];
  }

  hasEndpoint(name: string): boolean {
    const b = this.branches.get(name.split('/').slice(0, 4).join('/'));
    return !!b && b.state === 'READY' && b.endpoints.has(name);
  }

  /** The upstream database a login for `database` on `localAddress` goes to; undefined when that branch has no such database. */
  routeDatabase(localAddress: string, database: string): string | undefined {
    const host = localAddress.replace(/^::ffff:/, '');
    const b = [...this.branches.values()].find((x) => !x.root && x.host === host);
    if (!b) return database;
    return this.opts.databases.includes(database) ? this.upstreamName(b, database) : undefined;
  }

  private upstreamName(b: EmulatedBranch, database: string): string {
    if (b.root) return database;
    const name = `${database}@${b.id}.${b.uid.slice(0, 6)}`;
    return name.length <= 63 ? name : `lbe_${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
  }

  private branchJson(b: EmulatedBranch) {
    return {
      name: b.name,
      uid: b.uid,
      parent: `projects/${b.project}`,
      create_time: b.createTime,
      update_time: b.createTime,
      status: { current_state: b.state, default: b.root, source_branch: b.source, expire_time: b.expireTime },
    };
  }

  private endpointJson(b: EmulatedBranch, e: EmulatedEndpoint) {
    return {
      name: e.name,
      parent: b.name,
      endpoint_id: e.name.split('/').pop(),
      status: { endpoint_type: e.type, current_state: 'ACTIVE', hosts: { host: b.host } },
    };
  }

  private operation(resource: string, work: () => Promise<unknown>): Reply {
    const name = `${resource}/operations/${randomUUID()}`;
    const state: OperationState = { done: false };
    this.operations.set(name, state);
    work().then(
      (response) => Object.assign(state, { done: true, response }),
      (err: Error & { code?: string }) => Object.assign(state, { done: true, error: { error_code: err.code ?? 'INTERNAL_ERROR', message: err.message } }),
    );
    return { status: 200, body: { name, done: false } };
  }

  private async admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ connectionString: this.opts.upstream });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  /**
   * A consistent copy of `from` into a new database `to`, by `CREATE DATABASE … TEMPLATE` (no client
   * tools, any server version). PostgreSQL copies a template only while no other session is on it,
   * so sessions on `from` are ended first; a session that connects again in between makes the
   * CREATE fail with object_in_use (55006), and the copy is tried again.
   */
  private async copyDatabase(from: string, to: string): Promise<void> {
    await this.admin(async (c) => {
      for (let attempt = 1; ; attempt++) {
        await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [from]);
        try {
          await c.query(`CREATE DATABASE ${q(to)} TEMPLATE ${q(from)}`);
          return;
        } catch (err) {
          if ((err as { code?: string }).code !== '55006' || attempt >= 20) throw new Error(`copying database ${from}: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 100 * attempt));
        }
      }
    });
  }

  private async dropDatabases(b: EmulatedBranch): Promise<void> {
    await this.admin(async (c) => {
      for (const d of this.opts.databases) await c.query(`DROP DATABASE IF EXISTS ${q(this.upstreamName(b, d))} WITH (FORCE)`);
    });
  }

  private mayManage(identity: string, project: string): Reply | undefined {
    if (this.opts.projectManagers && !this.opts.projectManagers.includes(identity))
      return { status: 403, body: { error_code: 'PERMISSION_DENIED', message: `${identity} does not have CAN MANAGE permission on project ${project}.` } };
    return undefined;
  }

  private createBranch(project: string, id: string | null, body: Record<string, unknown>, identity: string): Reply {
    if (!this.projects.has(project)) return notFound(`Project projects/${project}`);
    const denied = this.mayManage(identity, project);
    if (denied) return denied;
    if (!id || !ID.test(id)) return invalid(`branch_id ${JSON.stringify(id)} must be 1-63 characters, start with a lowercase letter, and contain only lowercase letters, numbers, and hyphens.`);
    const name = `projects/${project}/branches/${id}`;
    if (this.branches.has(name)) return { status: 409, body: { error_code: 'ALREADY_EXISTS', message: `Branch ${name} already exists.` } };
    const spec = (body.spec ?? {}) as Record<string, unknown>;
    const source = typeof spec.source_branch === 'string' ? spec.source_branch : [...this.branches.values()].find((b) => b.project === project && b.root)?.name;
    const parent = source ? this.branches.get(source) : undefined;
    if (!parent || parent.project !== project || parent.state !== 'READY') return notFound(`Source branch ${source ?? '(default)'}`);
    const expirations = [spec.ttl !== undefined, spec.expire_time !== undefined, spec.no_expiry === true].filter(Boolean).length;
    if (expirations !== 1) return invalid('Exactly one of spec.ttl, spec.expire_time or spec.no_expiry: true must be set.');
    let expireTime: string | undefined;
    if (spec.ttl !== undefined) {
      const m = typeof spec.ttl === 'string' ? /^(\d+(?:\.\d+)?)s$/.exec(spec.ttl) : null;
      if (!m) return invalid(`spec.ttl ${JSON.stringify(spec.ttl)} must be a duration like "3600s".`);
      expireTime = new Date(Date.now() + Number(m[1]) * 1000).toISOString();
    } else if (typeof spec.expire_time === 'string') expireTime = spec.expire_time;
    if (this.opts.rootHost !== '127.0.0.1') return { status: 501, body: { error_code: 'NOT_IMPLEMENTED', message: 'the emulator gives branch endpoints their own 127.0.0.N host; run it with postgres.host 127.0.0.1' } };
    const b: EmulatedBranch = { name, project, id, uid: randomUUID(), root: false, source: parent.name, createTime: new Date().toISOString(), expireTime, state: 'INIT', host: `127.0.0.${this.nextHost++}`, endpoints: new Map() };
    this.branches.set(name, b);
    this.created.push(name);
    return this.operation(name, async () => {
      try {
        const injected = this.copyFailure;
        this.copyFailure = undefined;
        if (injected) throw Object.assign(new Error(injected.message), { code: injected.error_code });
        for (const d of this.opts.databases) await this.copyDatabase(this.upstreamName(parent, d), this.upstreamName(b, d));
        await this.opts.listen(b.host);
      } catch (err) {
        this.branches.delete(name);
        await this.dropDatabases(b).catch(() => undefined);
        throw err;
      }
      // Every branch gets a read-write endpoint named primary (Databricks Terraform/Pulumi provider docs).
      b.endpoints.set(`${name}/endpoints/primary`, { name: `${name}/endpoints/primary`, type: READ_WRITE });
      b.state = 'READY';
      return this.branchJson(b);
    });
  }

  private deleteBranch(b: EmulatedBranch, identity: string): Reply {
    const denied = this.mayManage(identity, b.project);
    if (denied) return denied;
    if (b.root) return invalid(`Branch ${b.name} is the project's root branch and cannot be deleted.`);
    return this.operation(b.name, async () => {
      this.opts.unlisten(b.host);
      await this.dropDatabases(b);
      this.branches.delete(b.name);
      return {};
    });
  }

  private createEndpoint(b: EmulatedBranch, id: string | null, body: Record<string, unknown>, identity: string): Reply {
    const denied = this.mayManage(identity, b.project);
    if (denied) return denied;
    if (!id || !ID.test(id)) return invalid(`endpoint_id ${JSON.stringify(id)} is not valid.`);
    const type = ((body.spec ?? {}) as Record<string, unknown>).endpoint_type;
    if (type !== READ_WRITE && type !== 'ENDPOINT_TYPE_READ_ONLY') return invalid('spec.endpoint_type must be ENDPOINT_TYPE_READ_WRITE or ENDPOINT_TYPE_READ_ONLY.');
    const name = `${b.name}/endpoints/${id}`;
    if (b.endpoints.has(name)) return { status: 409, body: { error_code: 'ALREADY_EXISTS', message: `Endpoint ${name} already exists.` } };
    if (type === READ_WRITE && [...b.endpoints.values()].some((e) => e.type === READ_WRITE)) return invalid(`Branch ${b.name} already has a read-write endpoint; a branch can only have one.`);
    return this.operation(name, async () => {
      const e = { name, type: String(type) };
      b.endpoints.set(name, e);
      return this.endpointJson(b, e);
    });
  }

  /** The next branch creation is accepted, then its operation ends with this error (as a failed copy inside Lakebase would). */
  failNextCopy(error: { error_code: string; message: string }): void {
    this.copyFailure = error;
  }

  /** Drops the databases of every created branch (the emulator's state ends with it). */
  async discard(): Promise<void> {
    for (const b of this.list().filter((x) => !x.root)) {
      this.opts.unlisten(b.host);
      await this.dropDatabases(b).catch(() => undefined);
      this.branches.delete(b.name);
    }
  }

  /** Answers a Postgres API request about projects/branches/endpoints/operations, or undefined if it is not one. */
  handle(method: string, path: string, query: URLSearchParams, body: Record<string, unknown>, identity: string): Reply | undefined {
    const m = /^\/api\/2\.0\/postgres\/(projects\/.+)$/.exec(path);
    if (!m) return undefined;
    const parts = m[1]!.split('/').map(decodeURIComponent);
    const [, project, branches, branchId, endpoints, endpointId] = parts;
    if (parts.includes('operations')) {
      if (method !== 'GET') return undefined;
      const op = this.operations.get(parts.join('/'));
      return op ? { status: 200, body: { name: parts.join('/'), ...op } } : notFound(`Operation ${parts.join('/')}`);
    }
    if (branches !== 'branches') return undefined;
    if (parts.length === 3) {
      if (method === 'POST') return this.createBranch(project!, query.get('branch_id'), body, identity);
      if (method === 'GET') {
        if (!this.projects.has(project!)) return notFound(`Project projects/${project}`);
        return { status: 200, body: { branches: this.list().filter((b) => b.project === project).map((b) => this.branchJson(b)) } };
      }
      return undefined;
    }
    const b = this.branches.get(`projects/${project}/branches/${branchId}`);
    if (parts.length === 4) {
      if (!b) return notFound(`Branch projects/${project}/branches/${branchId}`);
      if (method === 'GET') return { status: 200, body: this.branchJson(b) };
      if (method === 'DELETE') return this.deleteBranch(b, identity);
      return undefined;
    }
    if (endpoints !== 'endpoints') return undefined;
    if (parts.length === 5) {
      if (!b) return notFound(`Branch projects/${project}/branches/${branchId}`);
      if (method === 'GET') return { status: 200, body: { endpoints: [...b.endpoints.values()].map((e) => this.endpointJson(b, e)) } };
      if (method === 'POST') return this.createEndpoint(b, query.get('endpoint_id'), body, identity);
      return undefined;
    }
    if (parts.length === 6 && method === 'GET') {
      const name = `projects/${project}/branches/${branchId}/endpoints/${endpointId}`;
      const e = b?.state === 'READY' ? b.endpoints.get(name) : undefined;
      return b && e ? { status: 200, body: this.endpointJson(b, e) } : notFound(`Endpoint ${name}`);
    }
    return undefined;
  }
}
