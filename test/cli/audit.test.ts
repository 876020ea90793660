// End-to-end: the audit trail survives tampering checks, kill -9 and Ctrl-C.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { hashRow, HASHED_COLUMNS } from '../../src/audit/store.js';
import { remux, spawnRemux, tempHome } from '../support/cli.js';

const POLICY = `policies:
  p:
    capabilities:
      - { operation: execute_binary, resource: echo|sleep|true }
      - { operation: write_stdout, resource: null }
`;

interface Listed {
  id: number;
  status: string;
  command: string;
}

async function listed(env: Record<string, string>): Promise<Listed[]> {
  const r = await remux(['audit', 'ls', '--json', '--limit', '0'], { env });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim() === '' ? [] : r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Listed);
}

/** Polls until `predicate` holds or fails after `ms`. */
async function waitFor(predicate: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** True while some process runs exactly `sleep <arg>`. */
async function sleeping(arg: string): Promise<boolean> {
  const r = await import('node:child_process').then(({ spawnSync }) => spawnSync('pgrep', ['-f', `^sleep ${arg}$`]));
  return r.status === 0;
}

/** A home whose audit store holds three runs (echo one, two, three), made before the suite's tests. */
function homeWithThreeRuns(): { h: ReturnType<typeof tempHome>; env: Record<string, string> } {
  const h = tempHome();
  const env = { ...h.env, REMUX_POLICY_CONFIG: join(h.home, 'p.yaml') };
  before(async () => {
    writeFileSync(join(h.home, 'p.yaml'), POLICY);
    for (const word of ['one', 'two', 'three']) {
      const r = await remux(['client', 'run', 'local', '-p', 'p', '--', `echo ${word}`], { env });
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(() => h.remove());
  return { h, env };
}

describe('remux audit', () => {
  const { h, env } = homeWithThreeRuns();

  test('show ID prints one action whole (text and --json as ls --json has it); an unknown or malformed ID is a usage error', async () => {
    const two = (await listed(env)).find((a) => a.command === 'echo two')!;
    const json = await remux(['audit', 'show', String(two.id), '--json'], { env });
    assert.equal(json.code, 0, json.stderr);
    const ls = await remux(['audit', 'ls', '--json', '--limit', '0'], { env });
    assert.deepEqual(JSON.parse(json.stdout), ls.stdout.trim().split('\n').map((l) => JSON.parse(l) as Listed).find((a) => a.id === two.id));
    const text = await remux(['audit', 'show', String(two.id)], { env });
    assert.equal(text.code, 0, text.stderr);
    for (const line of [
      new RegExp(`^action +${two.id} \\(complete\\)$`),
      /^principal +cli:\S+$/,
      /^through +the command line, as the local user$/,
      /^host +local$/,
      /^operation +exec$/,
      /^command +echo two$/,
      /^argv +\["echo","two"\]$/,
      /^policy +p$/,
      /^decision +allow$/,
      /^reason +allowed: /,
      /^exit +0$/,
      /^took +\d+ ms$/,
      /^output +4 bytes$/,
    ]) assert.ok(text.stdout.split('\n').some((l) => line.test(l)), `${line}: ${text.stdout}`);
    const missing = await remux(['audit', 'show', '999999'], { env });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^remux: no action 999999 in \S+audit\.db\nhint: remux audit ls lists the actions/);
    assert.equal((await remux(['audit', 'show', '12abc'], { env })).code, 2);
    assert.match((await remux(['audit', 'ls', '--help'], { env })).stdout, /remux audit show ID prints one action whole/);
  });

  test('export --jsonl writes every record with its hash chain', async () => {
    const r = await remux(['audit', 'export', '--jsonl'], { env });
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { hash: string; prev_hash?: string; prevHash?: string });
    assert.equal(rows.length, 6, 'a begin and an end row per action');
    for (let i = 1; i < rows.length; i++) assert.equal(rows[i]?.prev_hash ?? rows[i]?.prevHash, rows[i - 1]?.hash);
  });

  test('ls --follow prints actions as they are recorded', async () => {
    const follower = spawnRemux(['audit', 'ls', '--follow', '--json', '--limit', '1'], { env });
    let out = '';
    follower.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(async () => out.includes('"command":"echo three"'), 5000, 'the existing last action');
    const r = await remux(['client', 'run', 'local', '-p', 'p', '--', 'echo followed'], { env });
    assert.equal(r.code, 0, r.stderr);
    // Its begin may be followed before its end: the action shows incomplete, then complete.
    const followed = (): Array<{ command: string; status: string }> =>
      out.trim().split('\n').filter((l) => l.endsWith('}')).map((l) => JSON.parse(l) as { command: string; status: string });
    await waitFor(async () => followed().some((a) => a.command === 'echo followed' && a.status === 'complete'), 5000, 'the new action to be followed, complete');
    follower.kill('SIGINT');
    assert.ok(followed().every((a) => a.command !== 'echo followed' || ['incomplete', 'complete'].includes(a.status)));
  });

  test('Ctrl-C kills the running command and is recorded', async () => {
    const child = spawnRemux(['client', 'run', 'local', '-p', 'p', '--', 'sleep 41.5'], { env });
    await waitFor(() => sleeping('41.5'), 5000, 'sleep to start');
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    assert.equal(await sleeping('41.5'), false, 'the command was killed with remux');
    const last = (await listed(env)).at(-1);
    assert.equal(last?.command, 'sleep 41.5');
    assert.equal(last?.status, 'complete');
  });

  test('kill -9 of remux mid-run leaves a store that opens, verifies and shows the action incomplete', async () => {
    const child = spawnRemux(['client', 'run', 'local', '-p', 'p', '--', 'sleep 42.5'], { env });
    await waitFor(() => sleeping('42.5'), 5000, 'sleep to start');
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('close', resolve));
    // The command's own process group outlives a SIGKILLed parent (nothing can catch SIGKILL); clean it up.
    (await import('node:child_process')).spawnSync('pkill', ['-f', '^sleep 42.5$']);
    const v = await remux(['audit', 'verify'], { env });
    assert.equal(v.code, 0, v.stderr);
    const last = (await listed(env)).at(-1);
    assert.equal(last?.command, 'sleep 42.5');
    assert.equal(last?.status, 'incomplete');
    const table = await remux(['audit', 'ls'], { env });
    assert.match(table.stdout, /sleep 42\.5/);
  });

  test('verify detects an edited record and names it (exit 1)', async () => {
    const db = new Database(join(h.home, 'audit.db'));
    const target = db.prepare("SELECT seq FROM audit WHERE command = 'echo two' AND kind = 'begin'").get() as { seq: number } | undefined;
    assert.ok(target, 'found the record to tamper with');
    // An attacker with write access to the file can drop the append-only triggers; the chain still tells.
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare("UPDATE audit SET command = 'echo TWO' WHERE seq = ?").run(target.seq);
    db.close();
    const r = await remux(['audit', 'verify'], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`#${target.seq}\\b`));
  });

  test("ls prints what others wrote (a command, a path) with its control characters escaped: no forged row, no escape sequence reaches the reader's terminal", async () => {
    // A command refused by the parser is recorded as written: a newline and a forged row, ESC, a bidi override.
    const forged = `echo 'x\n99  2026-01-01 00:00:00.000  INFO   admin  prod-db  0  1ms  rm -rf /var/lib\x1b[2J\u202e'`;
    const run = await remux(['client', 'run', 'local', '-p', 'p', '--', forged], { env });
    assert.equal(run.code, 2, run.stderr);
    const ls = await remux(['audit', 'ls'], { env });
    assert.equal(ls.code, 0, ls.stderr);
    assert.doesNotMatch(ls.stdout, /[\x1b\u202e]/u);
    assert.equal(ls.stdout.split('\n').filter((line) => /rm -rf \/var\/lib/.test(line)).length, 1, 'the forged row stays inside its own line');
    assert.match(ls.stdout, /x\\n99 {2}2026-01-01 .*rm -rf \/var\/lib\\x1b\[2J<U\+202E>/);
    // The JSON keeps what was recorded, exactly.
    assert.ok((await listed(env)).some((a) => a.command === forged));
  });
});

describe('remux audit of a host that cannot be reached', () => {
  const h = tempHome();
  const env = { ...h.env, REMUX_POLICY_CONFIG: join(h.home, 'p.yaml') };
  before(() => writeFileSync(join(h.home, 'p.yaml'), POLICY));
  after(() => h.remove());

  test('a host that cannot be reached is an error in the trail, not a denial: --level deny lists policy refusals only', async () => {
    // Nothing listens on port 1: the command is refused before any policy could decide about it.
    assert.equal((await remux(['hosts', 'add', 'nowhere', 'nobody@127.0.0.1', '--port', '1'], { env })).code, 0);
    assert.equal((await remux(['client', 'run', 'nowhere', '--policy', 'p', '--', 'echo never'], { env })).code, 255);
    const row = (await remux(['audit', 'ls', '--json', '--host', 'nowhere'], { env })).stdout.trim().split('\n').map((l) => JSON.parse(l) as { level: string; exitCode: number });
    assert.deepEqual(row.map((r) => [r.level, r.exitCode]), [['error', 255]]);
    assert.doesNotMatch((await remux(['audit', 'ls', '--level', 'deny', '--host', 'nowhere'], { env })).stdout, /echo never/);
  });
});

describe('remux audit verify --anchor', () => {
  const { h, env } = homeWithThreeRuns();

  /** The head `verify --json` prints now, as --anchor takes it. */
  async function head(): Promise<string> {
    const r = await remux(['audit', 'verify', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const { head: { seq, hash } } = JSON.parse(r.stdout) as { head: { seq: number; hash: string } };
    return `${seq}:${hash}`;
  }

  test('an edited record whose chain was recomputed after it verifies alone, and fails against a head kept from before', async () => {
    const anchor = await head();
    assert.equal((await remux(['audit', 'verify', '--anchor', anchor], { env })).code, 0);
    // Someone with write access to the file edits a record and recomputes every hash from there on.
    const db = new Database(join(h.home, 'audit.db'));
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare("UPDATE audit SET command = 'echo TWO' WHERE command = 'echo two'").run();
    let prev = '0'.repeat(64);
    for (const row of db.prepare(`SELECT ${HASHED_COLUMNS.join(', ')} FROM audit ORDER BY seq`).all() as Array<Parameters<typeof hashRow>[1]>) {
      const hash = hashRow(prev, row);
      db.prepare('UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?').run(prev, hash, row.seq);
      prev = hash;
    }
    db.close();
    assert.equal((await remux(['audit', 'verify'], { env })).code, 0, 'the chain alone cannot tell');
    const r = await remux(['audit', 'verify', '--anchor', anchor], { env });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, new RegExp(`record #${anchor.split(':')[0]}: differs from the anchored record`));
  });

  test('records removed from the end fail against a head kept from before; a bad anchor is a usage error', async () => {
    const anchor = await head();
    const db = new Database(join(h.home, 'audit.db'));
    db.exec('DROP TRIGGER audit_no_delete');
    db.prepare('DELETE FROM audit WHERE seq > (SELECT max(seq) - 2 FROM audit)').run();
    db.close();
    assert.equal((await remux(['audit', 'verify'], { env })).code, 0, 'the chain alone cannot tell');
    const r = await remux(['audit', 'verify', '--anchor', anchor, '--json'], { env });
    assert.equal(r.code, 1);
    assert.match((JSON.parse(r.stdout) as { firstBad: { reason: string } }).firstBad.reason, /records were removed from the end/);
    const bad = await remux(['audit', 'verify', '--anchor', '12:nothex'], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--anchor "12:nothex" is not a chain head/);
  });
});

describe('remux audit ls --before', () => {
  const { env } = homeWithThreeRuns();

  test('--limit and --before list a page at a time; the table ends saying where the older ones start', async () => {
    const ids = (await listed(env)).map((a) => a.id);
    assert.equal(ids.length, 3);
    const page = async (...args: string[]): Promise<number[]> => {
      const r = await remux(['audit', 'ls', '--json', ...args], { env });
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim() === '' ? [] : r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as Listed).id);
    };
    assert.deepEqual(await page('--limit', '1', '--before', String(ids[2])), [ids[1]]);
    assert.deepEqual(await page('--before', String(ids[2])), ids.slice(0, 2), 'the default limit, of the older ones');
    assert.deepEqual(await page('--limit', '0', '--before', String(ids[1])), ids.slice(0, 1), '0 is all');
    assert.deepEqual(await page('--before', String(ids[0])), []);

    const first = await remux(['audit', 'ls', '-n', '2'], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`\\n2 actions shown \\(older ones: --before ${ids[1]}\\)\\n$`));
    const last = await remux(['audit', 'ls', '-n', '2', '--before', String(ids[1])], { env });
    assert.match(last.stdout, /echo one/);
    assert.doesNotMatch(last.stdout, /older ones|echo two/);
    const none = await remux(['audit', 'ls', '--before', String(ids[0])], { env });
    assert.match(none.stderr, new RegExp(`^no recorded actions before ${ids[0]} in `));
    // Each filter is named: "no recorded actions" alone would read as an empty store.
    const filtered = await remux(['audit', 'ls', '--host', 'nope', '--principal', 'nobody', '--level', 'deny'], { env });
    assert.equal(filtered.code, 0, filtered.stderr);
    assert.match(filtered.stderr, /^no recorded actions at level deny on host nope by principal nobody in /);

    for (const bad of ['yesterday', '0', '1.5']) {
      const r = await remux(['audit', 'ls', '--before', bad], { env });
      assert.equal(r.code, 2);
      assert.match(r.stderr, new RegExp(`--before "${bad.replace('.', '\\.')}": not an action id[^]*give the ID of the oldest action listed before`));
    }
    const follow = await remux(['audit', 'ls', '--follow', '--before', String(ids[1])], { env });
    assert.equal(follow.code, 2);
    assert.match(follow.stderr, /--before and --follow do not go together/);
    assert.match((await remux(['audit', 'ls', '--help'], { env })).stdout, /remux audit ls --limit 20 --before 1234 +# the 20 before action 1234/);
  });
});

describe('remux audit with REMUX_TOKEN', () => {
  const { env } = homeWithThreeRuns();
  const tokens: Record<string, string> = {};
  const as = (who: string): Record<string, string> => ({ ...env, REMUX_TOKEN: tokens[who] ?? who });
  const run = async (who: string, word: string): Promise<void> => {
    const r = await remux(['client', 'run', 'local', '-p', 'p', '--', `echo ${word}`], { env: as(who) });
    assert.equal(r.code, 0, r.stderr);
  };
  const commands = async (who: string, ...args: string[]): Promise<string[]> => {
    const r = await remux(['audit', 'ls', '--json', '--limit', '0', ...args], { env: as(who) });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim() === '' ? [] : r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as Listed).command);
  };
  const added = async (who: string, ...scope: string[]): Promise<void> => {
    const r = await remux(['principal', 'add', who, ...scope, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    tokens[who] = (JSON.parse(r.stdout) as { token: string }).token;
  };

  // The local user ran echo one, two, three; then each principal runs its own, with its token.
  before(async () => {
    for (const who of ['alice', 'bob']) await added(who, '--hosts', 'local', '--policy', 'p');
    await added('root', '--admin');
    for (const who of ['alice', 'bob', 'root']) await run(who, `by-${who}`);
  });

  test('a token of no principal is refused (77) by ls, ls --follow, export and verify, with nothing shown', async () => {
    for (const args of [['ls'], ['ls', '--follow'], ['export', '--jsonl'], ['verify']]) {
      const r = await remux(['audit', ...args], { env: as('rmx_not-a-token'), timeoutMs: 10_000 });
      assert.equal(r.code, 77, `audit ${args.join(' ')}: ${r.stdout}`);
      assert.match(r.stderr, /^remux: REMUX_TOKEN matches no principal in \S+principals\.yaml\nhint: check the token/);
      assert.equal(r.stdout, '');
    }
  });

  test('a scoped principal lists only its own actions, as GET /api/audit shows it; an admin token and no token, all', async () => {
    assert.deepEqual(await commands('alice'), ['echo by-alice']);
    assert.deepEqual(await commands('alice', '--principal', 'alice'), ['echo by-alice']);
    assert.deepEqual(await commands('bob', '--host', 'local'), ['echo by-bob']);
    const everyone = ['echo one', 'echo two', 'echo three', 'echo by-alice', 'echo by-bob', 'echo by-root'];
    assert.deepEqual((await commands('root')).filter((c) => c.startsWith('echo')), everyone);
    assert.deepEqual(await commands('root', '--principal', 'bob'), ['echo by-bob']);
    assert.deepEqual((await listed(env)).map((a) => a.command).filter((c) => c.startsWith('echo')), everyone);
    const table = await remux(['audit', 'ls'], { env: as('alice') });
    assert.doesNotMatch(table.stdout, /by-bob|echo one/);
    // Naming another principal is refused as the API refuses it (403), never answered with an empty list.
    const other = await remux(['audit', 'ls', '--principal', 'bob'], { env: as('alice') });
    assert.equal(other.code, 77);
    assert.equal(other.stderr.split('\n')[0], "remux: out of scope for alice: only admins see other principals' actions");
    assert.equal(other.stdout, '');
  });

  test("show as a scoped principal shows its own actions; another's reads as no such action, as the API hides it", async () => {
    const all = (await listed(env)).filter((a) => a.command.startsWith('echo by-'));
    const id = (who: string): string => String(all.find((a) => a.command === `echo by-${who}`)!.id);
    const own = await remux(['audit', 'show', id('alice'), '--json'], { env: as('alice') });
    assert.equal(own.code, 0, own.stderr);
    assert.equal((JSON.parse(own.stdout) as Listed).command, 'echo by-alice');
    const other = await remux(['audit', 'show', id('bob')], { env: as('alice') });
    assert.equal(other.code, 2);
    assert.equal(other.stdout, '');
    assert.match(other.stderr, new RegExp(`^remux: no action ${id('bob')} in `));
    assert.equal((await remux(['audit', 'show', id('bob'), '--json'], { env: as('root') })).code, 0);
  });

  test("ls --follow as a scoped principal prints its own new actions, not another's", async () => {
    const follower = spawnRemux(['audit', 'ls', '--follow', '--json', '--limit', '0'], { env: as('alice') });
    let out = '';
    follower.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(async () => out.includes('"command":"echo by-alice"'), 5000, "alice's earlier action");
    await run('bob', 'bob-meanwhile');
    await run('alice', 'alice-meanwhile');
    const followed = (): Array<{ command: string; status: string }> =>
      out.trim().split('\n').filter((l) => l.endsWith('}')).map((l) => JSON.parse(l) as { command: string; status: string });
    await waitFor(async () => followed().some((a) => a.command === 'echo alice-meanwhile' && a.status === 'complete'), 5000, "alice's new action, complete");
    follower.kill('SIGINT');
    assert.deepEqual([...new Set(followed().map((a) => a.command))], ['echo by-alice', 'echo alice-meanwhile']);
  });

  test('export as a scoped principal writes the rows of its own actions, without the hashes; an admin gets the whole chain', async () => {
    const rows = async (who: string): Promise<Array<Record<string, unknown>>> => {
      const r = await remux(['audit', 'export', '--jsonl'], { env: as(who) });
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    };
    const mine = await rows('bob');
    assert.deepEqual(mine.filter((r) => r.kind === 'begin').map((r) => r.command), await commands('bob'));
    assert.ok(mine.some((r) => r.command === 'echo by-bob'));
    assert.deepEqual(mine.filter((r) => r.kind === 'end').map((r) => r.action_id), mine.filter((r) => r.kind === 'begin').map((r) => r.seq));
    assert.ok(mine.every((r) => !('hash' in r) && !('prev_hash' in r)), "no hash of a chain holding others' records");
    const all = await rows('root');
    assert.deepEqual(all, (await remux(['audit', 'export'], { env })).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>));
    assert.ok(all.every((r) => typeof r.hash === 'string'));
    assert.ok(all.some((r) => r.principal === 'alice') && all.some((r) => r.principal === 'bob'));
  });

  test("verify is refused to a scoped principal (77: the API has none, and the verdict is on everyone's records); an admin token verifies", async () => {
    const r = await remux(['audit', 'verify', '--json'], { env: as('alice') });
    assert.equal(r.code, 77);
    assert.match(r.stderr, /^remux: out of scope for alice: only admins verify the audit chain/);
    assert.equal(r.stdout, '');
    const ok = await remux(['audit', 'verify'], { env: as('root') });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^ok: \d+ records verified/);
  });

  test('a principal removed and added again under its name sees none of what the old one did', async () => {
    assert.equal((await remux(['principal', 'rm', 'alice'], { env })).code, 0);
    await added('alice', '--hosts', 'local', '--policy', 'p');
    assert.deepEqual(await commands('alice'), []);
    const r = await remux(['audit', 'export'], { env: as('alice') });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
  });
});
