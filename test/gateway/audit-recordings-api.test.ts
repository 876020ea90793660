// The audit stream and the recordings over a real daemon's HTTPS API: scoping (non-admins see only
// their own), ids that are not recordings, resuming a stream with Last-Event-ID, and a client that stops
// reading a stream being closed instead of buffered.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AuditStore } from '../../src/audit/store.js';
import { AttachRecorder } from '../../src/sessions/recording.js';
import { remux, tempHome } from '../support/cli.js';
import { client, type Client } from '../support/https.js';

const POLICY = `policies:
  read_only:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: echo|true }
      - { operation: write_stdout, resource: null }
`;

interface Change {
  id: string | null;
  event: string;
  data: Record<string, unknown>;
}

/** An open SSE stream: the events parsed so far, and a wait for one that matches. */
interface Stream {
  changes: Change[];
  response: IncomingMessage;
  until(match: (c: Change) => boolean, timeoutMs?: number): Promise<Change>;
  close(): void;
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

describe('audit stream and recordings API', () => {
  const h = tempHome();
  const tokens = { admin: '', local: '' };
  let api: Client;
  let base: URL;
  let ca = '';
  const recordings = { admin: '', local: '' };

  async function addPrincipal(...args: string[]): Promise<string> {
    const r = await remux(['principal', 'add', ...args, '--json'], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { token: string }).token;
  }

  function stream(path: string, headers: Record<string, string>): Promise<Stream> {
    return new Promise((resolve, reject) => {
      const req = https.request({ method: 'GET', host: base.hostname, port: base.port, path, ca, agent: false, headers });
      req.on('error', reject);
      req.on('response', (response) => {
        const changes: Change[] = [];
        const waiters: Array<() => void> = [];
        let pending = '';
        response.setEncoding('utf8').on('data', (text: string) => {
          pending += text;
          const blocks = pending.split('\n\n');
          pending = blocks.pop()!;
          for (const block of blocks) {
            const fields = new Map(block.split('\n').filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)] as const));
            if (!fields.has('data')) continue;
            changes.push({ id: fields.get('id') ?? null, event: fields.get('event') ?? 'message', data: JSON.parse(fields.get('data')!) as Record<string, unknown> });
          }
          waiters.splice(0).forEach((w) => w());
        });
        const until = async (match: (c: Change) => boolean, timeoutMs = 5000): Promise<Change> => {
          const deadline = Date.now() + timeoutMs;
          for (;;) {
            const found = changes.find(match);
            if (found) return found;
            assert.ok(Date.now() < deadline, `no matching event in ${timeoutMs} ms; got ${JSON.stringify(changes)}`);
            await new Promise<void>((r) => {
              waiters.push(r);
              setTimeout(r, 100);
            });
          }
        };
        resolve({ changes, response, until, close: () => req.destroy() });
      });
      req.end();
    });
  }

  const run = async (token: string, command: string): Promise<void> => {
    const r = await api.request('POST', '/api/run', { headers: bearer(token), body: { selector: 'localhost', command, policy: 'read_only' } });
    assert.equal(r.status, 200, r.text);
  };

  before(async () => {
    writeFileSync(join(h.home, 'policies.yaml'), POLICY);
    tokens.admin = await addPrincipal('boss', '--admin');
    // Its recordings name tmux user me: a real attach needed that user in its scope too.
    tokens.local = await addPrincipal('local-ops', '--hosts', 'localhost', '--users', 'me');
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
    const url = /web console and API: (\S+)/.exec(started.stdout)![1]!;
    base = new URL(url);
    ca = readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8');
    api = client(url, ca);
    for (const principal of ['boss', 'local-ops'] as const) {
      const rec = new AttachRecorder(join(h.home, 'recordings'), { host: 'localhost', user: 'me', session: 'work', principal, readOnly: false, actionId: null }, { cols: 80, rows: 24 });
      rec.output(Buffer.from(`hello from ${principal}\r\n`));
      rec.end();
      recordings[principal === 'boss' ? 'admin' : 'local'] = rec.id;
    }
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    h.remove();
  });

  test('recordings: admins list all, others their own; a file is served to its principal only; ids that are not recordings are refused', async () => {
    const all = await api.request('GET', '/api/recordings', { headers: bearer(tokens.admin) });
    assert.deepEqual(all.json<Array<{ id: string }>>().map((r) => r.id).sort(), [recordings.admin, recordings.local].sort());
    const mine = await api.request('GET', '/api/recordings', { headers: bearer(tokens.local) });
    assert.deepEqual(mine.json<Array<{ id: string; principal: string; session: string }>>().map((r) => [r.id, r.principal, r.session]), [[recordings.local, 'local-ops', 'work']]);

    const own = await api.request('GET', `/api/recordings/${recordings.local}`, { headers: bearer(tokens.local) });
    assert.equal(own.status, 200);
    assert.match(String(own.headers['content-type']), /^application\/x-asciicast/);
    const [header, event] = own.text.trim().split('\n').map((l) => JSON.parse(l) as unknown);
    assert.equal((header as { version: number }).version, 2);
    assert.deepEqual((event as unknown[]).slice(1), ['o', 'hello from local-ops\r\n']);
    assert.equal((await api.request('GET', `/api/recordings/${recordings.local}`, { headers: bearer(tokens.admin) })).status, 200);

    const theirs = await api.request('GET', `/api/recordings/${recordings.admin}`, { headers: bearer(tokens.local) });
    assert.equal(theirs.status, 403);
    assert.equal(theirs.json().error, 'out_of_scope');
    const unknown = await api.request('GET', '/api/recordings/20260101T000000Z-000000000000', { headers: bearer(tokens.admin) });
    assert.equal(unknown.status, 404);
    for (const id of ['..%2Fx', '..%2F..%2Fprincipals.yaml', `${recordings.local}.cast`, '%2Fetc%2Fpasswd']) {
      const r = await api.request('GET', `/api/recordings/${id}`, { headers: bearer(tokens.admin) });
      assert.equal(r.status, 400, id);
      assert.match(r.json<{ message: string }>().message, /not a recording id/);
    }
    assert.equal((await api.request('GET', '/api/recordings/../principals.yaml', { headers: bearer(tokens.admin) })).status, 404);
    assert.equal((await api.request('GET', '/api/recordings')).status, 401);
  });

  test('the stream is scoped: a non-admin gets only its own actions and cannot ask for others\'', async () => {
    assert.equal((await api.request('GET', '/api/audit/stream?principal=boss', { headers: bearer(tokens.local) })).status, 403);
    assert.equal((await api.request('GET', '/api/audit/stream')).status, 401);
    const local = await stream('/api/audit/stream', bearer(tokens.local));
    const admin = await stream('/api/audit/stream?limit=1', bearer(tokens.admin));
    try {
      assert.match(String(local.response.headers['content-type']), /^text\/event-stream/);
      assert.match(String(local.response.headers['content-security-policy']), /default-src 'self'/);
      await local.until((c) => c.event === 'live');
      await admin.until((c) => c.event === 'live');
      await run(tokens.admin, 'echo from boss');
      await run(tokens.local, 'echo from local');
      const done = (command: string) => (c: Change) => c.data.command === command && c.data.status === 'complete';
      const seen = await admin.until(done('echo from local'));
      await admin.until(done('echo from boss'));
      assert.equal(seen.data.exitCode, 0);
      assert.ok(Number(seen.id) > 0, 'a change carries the id to resume from');
      await local.until(done('echo from local'));
      // The admin's stream saw the boss's run; the scoped one, open as long, never does.
      assert.deepEqual(local.changes.filter((c) => c.event === 'message').map((c) => c.data.principal).filter((p) => p !== 'local-ops'), []);
    } finally {
      local.close();
      admin.close();
    }
  });

  test('a principal has at most 8 streams open at once; closing one makes room', async () => {
    const open = await Promise.all(Array.from({ length: 8 }, () => stream('/api/audit/stream?limit=1', bearer(tokens.local))));
    try {
      const ninth = await api.request('GET', '/api/audit/stream', { headers: bearer(tokens.local) });
      assert.equal(ninth.status, 429);
      assert.match(ninth.json<{ message: string }>().message, /local-ops has 8 audit streams open/);
      const admin = await stream('/api/audit/stream?limit=1', bearer(tokens.admin));
      assert.equal(admin.response.statusCode, 200, 'the limit is per principal');
      admin.close();
      open.pop()!.close();
      for (const deadline = Date.now() + 5000; ; await new Promise((r) => setTimeout(r, 50))) {
        const again = await stream('/api/audit/stream?limit=1', bearer(tokens.local));
        if (again.response.statusCode === 200) {
          open.push(again);
          break;
        }
        again.close();
        assert.ok(Date.now() < deadline, 'a closed stream never made room for another');
      }
    } finally {
      open.forEach((s) => s.close());
    }
  });

  test('Last-Event-ID resumes after the last change seen, without the backlog', async () => {
    const first = await stream('/api/audit/stream?principal=local-ops', bearer(tokens.admin));
    const live = await first.until((c) => c.event === 'live');
    assert.ok(first.changes.some((c) => c.data.command === 'echo from local'), 'a fresh stream starts with the newest actions');
    first.close();
    await run(tokens.local, 'echo while away');
    const again = await stream('/api/audit/stream?principal=local-ops', { ...bearer(tokens.admin), 'last-event-id': live.id! });
    try {
      const missed = await again.until((c) => c.data.command === 'echo while away' && c.data.status === 'complete');
      assert.equal(again.changes[0]?.event, 'live');
      assert.equal(again.changes[0]?.id, live.id);
      assert.ok(!again.changes.some((c) => c.data.command === 'echo from local'), 'nothing from before the id is sent again');
      assert.ok(Number(missed.id) > Number(live.id));
    } finally {
      again.close();
    }
    assert.equal((await api.request('GET', '/api/audit/stream', { headers: { ...bearer(tokens.admin), 'last-event-id': '../1' } })).status, 400);
  });

  test('a client that stops reading its stream is closed with an overflow event, not buffered', async () => {
    const slow = await stream('/api/audit/stream?principal=flood', bearer(tokens.admin));
    await slow.until((c) => c.event === 'live');
    slow.response.pause();
    // 24 MiB of changes: well past the stream's 1 MiB bound plus what the sockets hold. The bulk is in
    // `rule`, which the store does not redact: writing it is quick.
    const store = AuditStore.open(join(h.home, 'audit.db'), { durability: 'normal' });
    const rule = 'flood '.repeat(13_000);
    await Promise.all(Array.from({ length: 320 }, () => store.record({ principal: 'flood', host: 'localhost', operation: 'execute_binary', command: 'echo', rule, decision: 'allow' }, { exitCode: 0, durationMs: 1 })));
    store.close();
    await new Promise((r) => setTimeout(r, 1000)); // the daemon polls every 200 ms
    let received = 0;
    const ended = new Promise<void>((resolve) => slow.response.on('end', resolve));
    slow.response.on('data', (text: string) => (received += text.length));
    slow.response.resume();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ended, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('the stream of a client that stopped reading was never closed')), 10_000)))]);
    clearTimeout(timer);
    const last = slow.changes.at(-1);
    assert.equal(last?.event, 'overflow');
    assert.match(String(last?.data.message), /fell behind/);
    const floods = slow.changes.filter((c) => c.data.principal === 'flood').length;
    assert.ok(floods < 320 && received < 16 << 20, `the daemon held ${floods} changes (${received} bytes) for a client that did not read`);
  });
});
