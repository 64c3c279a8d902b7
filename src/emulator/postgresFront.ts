import { createHash, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';
import { devPackage } from '../provision/devPackages';
import type { ReadOnlyGrant, TokenStore } from './tokens';

const gateway = () => devPackage('pg-gateway', 'the Lakebase emulator', 'use the emulator image (docker-compose.yml, Dockerfile target emulator)');

export interface PostgresFront {
  server: net.Server;
  /** The connection handler, for more listeners (a branch endpoint's own host). */
  accept(socket: net.Socket): void;
  logins: { accepted: number; refused: number };
  /** Ends every open session (the server's close() waits for them otherwise). */
  closeAll(): void;
  /** Scale to zero: suspend the compute (ends open sessions); the next connection wakes it. */
  suspend(): void;
  readonly compute: { state: 'active' | 'suspended' | 'waking'; wakes: number; refusedWhileWaking: number };
}

interface Upstream {
  socket: net.Socket;
  /** ParameterStatus messages from the real server, replayed to the client. */
  statuses: Buffer[];
}

class UpstreamError extends Error {
  constructor(message: string, readonly raw?: Buffer) {
    super(message);
  }
}

function passwordMessage(password: string): Buffer {
  const body = Buffer.from(`${password}\0`, 'utf8');
  const head = Buffer.alloc(5);
  head.write('p', 0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/** Logs in to the real PostgreSQL (trust, cleartext or md5) and reads until ReadyForQuery; as `as` instead of the URL's user. */
function openUpstream(url: URL, parameters: Record<string, string>, as?: string): Promise<Upstream> {
  const user = as ?? (decodeURIComponent(url.username) || 'postgres');
  const password = decodeURIComponent(url.password);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port || 5432), url.hostname);
    const statuses: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.on('connect', () => {
      socket.write(gateway().createStartupMessage({ majorVersion: 3, minorVersion: 0, parameters: { ...parameters, user } }));
    });
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5) {
        const len = buf.readInt32BE(1);
        if (buf.length < len + 1) return;
        const msg = buf.subarray(0, len + 1);
        buf = buf.subarray(len + 1);
        const type = String.fromCharCode(msg[0]!);
        if (type === 'R') {
          const code = msg.readInt32BE(5);
          if (code === 3) socket.write(passwordMessage(password));
          else if (code === 5) {
            const salt = msg.subarray(9, 13);
            const inner = createHash('md5').update(password + user).digest('hex');
            socket.write(passwordMessage(`md5${createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex')}`));
          } else if (code !== 0) return fail(new UpstreamError(`upstream asks for authentication method ${code}; use trust, password or md5 for the emulator's upstream user`));
        } else if (type === 'S') statuses.push(Buffer.from(msg));
        else if (type === 'E') return fail(new UpstreamError('upstream refused the connection', Buffer.from(msg)));
        else if (type === 'Z') {
          socket.off('data', onData);
          socket.off('error', fail);
          if (buf.length) socket.unshift(buf);
          return resolve({ socket, statuses });
        }
      }
    };
    socket.on('data', onData);
  });
}

/**
 * A Postgres front like Lakebase's: a login is accepted only while its password is a valid token
 * issued to that user (checked at login only; open connections outlive the token), then the
 * session is piped to the real PostgreSQL.
 */
export interface PostgresFrontOptions {
  passwordRoles?: ReadonlyArray<{ role: string; password: string }>;
  /** Start suspended; a connection wakes the compute after this delay (scale to zero). */
  wakeDelayMs?: number;
  /** The upstream database for a login to `database` that arrived on `localAddress` (branch endpoints); undefined: it does not exist there. */
  routeDatabase?: (localAddress: string, database: string) => string | undefined;
}

/** A FATAL ErrorResponse, as PostgreSQL sends while it cannot accept connections yet. */
function fatal(code: string, message: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${message}\0\0`, 'utf8');
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([head, fields]);
}

const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

/**
 * The upstream role a READ_ONLY credential logs in as, made on first use: it can log in and read
 * (pg_read_all_data, or SELECT on exactly the claimed tables in `database`) and nothing else, and
 * its sessions start read-only. Setting `default_transaction_read_only` back off in a session does
 * not help it write: it holds no write privilege (42501). Grants are made in the database logged
 * in to, one at a time (concurrent GRANTs on one object can fail with "tuple concurrently updated").
 */
function readOnlyRoles(upstream: URL) {
  let chain: Promise<unknown> = Promise.resolve();
  const password = decodeURIComponent(upstream.password);
  async function prepare(database: string, grant: ReadOnlyGrant): Promise<string> {
    const role = `lakebase_ro_${createHash('sha256').update(grant.tables.join('\n')).digest('hex').slice(0, 12)}`;
    const url = new URL(upstream.href);
    url.pathname = `/${encodeURIComponent(database)}`;
    const admin = new pg.Client({ connectionString: url.href });
    await admin.connect();
    try {
      const exists = await admin.query('select 1 from pg_roles where rolname = $1', [role]);
      if (!exists.rowCount) {
        await admin
          .query(`CREATE ROLE ${ident(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS${password ? ` PASSWORD ${literal(password)}` : ''}`)
          .catch((err: { code?: string }) => {
            if (err.code !== '42710' && err.code !== '23505') throw err;
          });
        await admin.query(`ALTER ROLE ${ident(role)} SET default_transaction_read_only = on`);
      }
      if (!grant.tables.length) await admin.query(`GRANT pg_read_all_data TO ${ident(role)}`);
      for (const t of grant.tables) {
        const dot = t.indexOf('.');
        const [schema, table] = [t.slice(0, dot), t.slice(dot + 1)];
        // A claimed table missing here grants nothing: reading it fails like any table without a grant.
        await admin.query(`GRANT USAGE ON SCHEMA ${ident(schema)} TO ${ident(role)}`).catch(() => undefined);
        await admin.query(`GRANT SELECT ON ${ident(schema)}.${ident(table)} TO ${ident(role)}`).catch(() => undefined);
      }
      return role;
    } finally {
      await admin.end().catch(() => undefined);
    }
  }
  return (database: string, grant: ReadOnlyGrant): Promise<string> => {
    const next = chain.then(() => prepare(database, grant));
    chain = next.catch(() => undefined);
    return next;
  };
}

const sameSecret = (a: string, b: string) => {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
};

export function createPostgresFront(store: TokenStore, upstreamUrl: string, opts: PostgresFrontOptions = {}): PostgresFront {
  const { PostgresConnection } = gateway();
  const upstream = new URL(upstreamUrl);
  const readOnlyRole = readOnlyRoles(upstream);
  const passwordRoles = new Map((opts.passwordRoles ?? []).map((r) => [r.role, r.password]));
  const logins = { accepted: 0, refused: 0 };
  const open = new Set<net.Socket>();
  const compute: PostgresFront['compute'] = { state: opts.wakeDelayMs === undefined ? 'active' : 'suspended', wakes: 0, refusedWhileWaking: 0 };
  let wakeTimer: NodeJS.Timeout | undefined;
  const accept = (socket: net.Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => socket.destroy());
    if (compute.state !== 'active') {
      if (compute.state === 'suspended') {
        compute.state = 'waking';
        compute.wakes++;
        wakeTimer = setTimeout(() => (compute.state = 'active'), opts.wakeDelayMs ?? 0);
        wakeTimer.unref();
      }
      compute.refusedWhileWaking++;
      socket.end(fatal('57P03', 'the database system is starting up (compute waking from scale to zero)'));
      return;
    }
    let readOnly: ReadOnlyGrant | undefined;
    const conn = new PostgresConnection(socket, {
      authMode: 'cleartextPassword',
      validateCredentials: (credentials) => {
        if (credentials.authMode !== 'cleartextPassword') return false;
        const rolePassword = passwordRoles.get(credentials.user);
        const rec = rolePassword === undefined ? store.valid(credentials.password) : undefined;
        const ok = rolePassword !== undefined ? sameSecret(rolePassword, credentials.password) : rec !== undefined && rec.identity === credentials.user;
        readOnly = ok ? rec?.readOnly : undefined;
        if (ok) logins.accepted++;
        else logins.refused++;
        return ok;
      },
      onAuthenticated: async (state) => {
        const { user: _user, ...parameters } = state.clientInfo!.parameters;
        parameters.database ??= state.clientInfo!.parameters.user;
        const client = conn.detach();
        if (opts.routeDatabase) {
          const routed = opts.routeDatabase(socket.localAddress ?? '', parameters.database);
          if (routed === undefined) {
            client.end(fatal('3D000', `database "${parameters.database}" does not exist on this branch`));
            return;
          }
          parameters.database = routed;
        }
        try {
          // A READ_ONLY credential's session: a role that can only read, starting read-only.
          let as: string | undefined;
          if (readOnly) {
            as = await readOnlyRole(parameters.database, readOnly).catch((err: Error) => {
              // Say why (e.g. the upstream user may not create roles) instead of dropping the line.
              throw new UpstreamError('read-only role', fatal('XX000', `emulator: cannot prepare the READ_ONLY credential's role: ${err.message}`));
            });
            parameters.options = `${parameters.options ?? ''} -c default_transaction_read_only=on`.trim();
          }
          const up = await openUpstream(upstream, parameters, as);
          for (const s of up.statuses) client.write(s);
          up.socket.on('error', () => client.destroy());
          client.on('error', () => up.socket.destroy());
          up.socket.on('close', () => client.destroy());
          client.on('close', () => up.socket.destroy());
          client.pipe(up.socket);
          up.socket.pipe(client);
        } catch (err) {
          if (err instanceof UpstreamError && err.raw) client.end(err.raw);
          else client.destroy();
        }
      },
    });
    void conn;
  };
  const server = net.createServer(accept);
  return {
    server,
    accept,
    logins,
    compute,
    closeAll: () => {
      clearTimeout(wakeTimer);
      open.forEach((s) => s.destroy());
    },
    suspend: () => {
      clearTimeout(wakeTimer);
      compute.state = 'suspended';
      open.forEach((s) => s.destroy());
    },
  };
}
