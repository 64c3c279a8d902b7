import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import { after, describe, test } from 'node:test';
import { keyId } from '../src/auth/sealed';
import { EncryptionCodec } from '../src/codec/encryption';
import { createCodecServer } from '../src/codec/server';
import { freePort } from '../src/provision/postgres';
import { CLI, runCli } from './helpers/cli';

const key = randomBytes(32);
const codec = new EncryptionCodec([{ id: keyId(key), key }]);
const TOKEN = randomBytes(24).toString('base64'); // 32 characters

/** An address of this machine that is not loopback, if it has one. */
const outside = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

describe('the codec server: a long token, a body cap, loopback by default', () => {
  const servers: { close(): void }[] = [];
  after(() => servers.forEach((s) => s.close()));

  test('a token under 32 bytes is refused; one read with surrounding whitespace is trimmed', async () => {
    assert.throws(() => createCodecServer({ codec, origins: [], token: 'short-token' }), /at least 32 bytes/);
    const server = createCodecServer({ codec, origins: [], token: `  ${TOKEN}\n` });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/decode`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ payloads: [] }) });
    assert.equal(res.status, 200);
  });

  test('a body over the cap is answered 413, not buffered', async () => {
    const server = createCodecServer({ codec, origins: [], token: TOKEN, maxBodyBytes: 1024 * 1024 });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const big = JSON.stringify({ payloads: [{ data: 'A'.repeat(3 * 1024 * 1024) }] });
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/decode`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: big });
    assert.equal(res.status, 413);
  });

  test('`codec-server` listens on 127.0.0.1 unless told otherwise, and refuses a short LAKEBASE_CODEC_TOKEN', async () => {
    const short = await runCli(['codec-server', '--port', String(await freePort())], { env: { LAKEBASE_CODEC_TOKEN: 'abc', LAKEBASE_SECRET_KEYS: key.toString('hex') } });
    assert.notEqual(short.code, 0);
    assert.match(short.stderr, /LAKEBASE_CODEC_TOKEN: the codec token must be at least 32 bytes/);
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'codec-server', '--port', String(port)], {
      env: { ...process.env, LAKEBASE_WORKER_FROM_SOURCE: '1', LAKEBASE_CODEC_TOKEN: TOKEN, LAKEBASE_SECRET_KEYS: key.toString('hex') },
    });
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      for (const deadline = Date.now() + 30_000; !/codec server on/.test(out); await new Promise((r) => setTimeout(r, 100))) assert.ok(Date.now() < deadline, out);
      assert.match(out, new RegExp(`codec server on http://127\\.0\\.0\\.1:${port} `));
      const reach = (host: string) => new Promise<boolean>((resolve) => {
        const s = net.connect(port, host, () => (s.destroy(), resolve(true)));
        s.on('error', () => resolve(false));
      });
      assert.equal(await reach('127.0.0.1'), true);
      if (outside) assert.equal(await reach(outside), false, `reachable on ${outside}`);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
