// The remote resolver against a real host. The fleet shares this machine's filesystem, so the local
// resolver is the reference: every decision made with the host's answers must equal the local one,
// over the policy fixture's tree of symlinks, multi-call binaries and hostile file names. Also: how
// many round trips it takes, the which cache, the script under dash, and the answer format.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseCommand } from '../../src/command/parser.js';
import { quoteWord } from '../../src/command/render.js';
import type { CommandList } from '../../src/command/types.js';
import { ConnectionPool } from '../../src/hosts/pool.js';
import { TransportError } from '../../src/hosts/types.js';
import { parseAnswers, prefetchResolver, resolverScript, WhichCache, type RemoteLookup } from '../../src/hosts/remote-resolver.js';
import { captureScript, connectSsh, wrapScript, type SshConnection } from '../../src/hosts/ssh.js';
import { BY_NAME_DIR, evaluate, programsMatchByName } from '../../src/policy/evaluate.js';
import { parsePolicies } from '../../src/policy/load.js';
import type { Decision, Policy } from '../../src/policy/types.js';
import { inventoryEntry, startFleet, type Fleet, type FleetHost } from '../fleet/fleet.js';
import { makeFixture, rawCommand, type Fixture } from '../policy/fixture.js';

let fleet: Fleet;
let h1: FleetHost;
let conn: SshConnection;
let fx: Fixture;
let securePath: string;
let trips = 0;

before(async () => {
  fleet = await startFleet({ count: 2 });
  h1 = fleet.hosts[0] as FleetHost;
  conn = await connectSsh(
    { name: h1.name, address: h1.address, port: h1.port, user: h1.user, auth: { method: 'identity', file: h1.identityFile } },
    { knownHostsFile: fleet.knownHostsFile },
  );
  fx = makeFixture(`
  no_multi:
    capabilities:
      - { operation: execute_binary, resource: "*" }
      - { operation: execute_binary, resource: multi, effect: deny }
      - { operation: list_directory, resource: "/**" }
      - { operation: write_stdout, resource: null }
`);
  securePath = join(fx.root, 'bin');
});

after(async () => {
  await conn.close();
  await fleet.stop();
  fx.remove();
});

function lookup(cache?: WhichCache): RemoteLookup {
  return {
    run: (script) => {
      trips++;
      return captureScript(conn, script, { securePath, timeoutMs: 5000, maxBytes: 1 << 20 });
    },
    securePath,
    ...(cache ? { whichCache: cache } : {}),
  };
}

/** The decision with the host's answers, and how many round trips they took. */
async function remoteCheck(list: CommandList, opts: { cwd?: string; policy?: Policy; cache?: WhichCache } = {}): Promise<{ decision: Decision; trips: number }> {
  const policy = opts.policy ?? fx.policy;
  const cwd = opts.cwd ?? fx.root;
  const before = trips;
  const resolver = await prefetchResolver(policy, list, cwd, lookup(opts.cache));
  return { decision: evaluate(policy, list, { cwd, resolver }), trips: trips - before };
}

/** Decisions compared check by check; reasons only where no resolver error is involved (the wording differs). */
function comparable(d: Decision): unknown {
  return {
    effect: d.effect,
    checks: d.checks.map((c) => ({
      operation: c.operation,
      resource: c.resource,
      effect: c.effect,
      rule: c.rule?.index ?? null,
      reason: c.reason.includes('cannot be checked') ? 'unresolvable' : c.reason,
    })),
  };
}

describe('decisions with the host\'s answers equal the local ones', () => {
  const commands = [
    'cat data/a.log | grep x',
    'cat data/a.log sub/b.log',
    'cat data/secret/key',
    'cat data/alias/key',
    'cat data/escape/f',
    'cat data/passwd',
    'cat data/loop1',
    'cat linked/k',
    'cat data/ask/q',
    'ls data',
    'grep x data/sub/b.log > out/new.txt',
    'cat data/a.log > out/dangle',
    'cat data/missing/../a.log',
    'cat data/a.log/',
    './data/cat data/a.log',
    'data/mycat data/a.log',
    'evil/cat data/a.log',
    'tools/x',
    'tools/sub/../x',
    'mls data',
    'mrm data/a.log',
    'nosuchprogram data',
    'timeout 5 cat data/a.log',
    'nice cat data/a.log',
    'env cat data/secret/key',
    'sh -c "cat data/a.log; cat data/secret/key"',
    'xargs cat < data/a.log',
    'sort -o out/s data/a.log',
    'cat data/a.log | head -1 | tee out/t',
    'cat ../../data/a.log',
    // Leading cds move the cwd of the rest; the host resolves them (a link out of the tree included).
    'cd data && cat a.log',
    'cd data/escape && cat f',
    'cd data/sub; cd .. && cat secret/key',
    'cd data && ls | cd sub',
    // Into the resolver's own /proc entry: realpath's there, not the program's (refused on both sides).
    'cat /proc/self/cwd/data/a.log',
    'cat /dev/stdin',
    'cat /dev/fd/0 /dev/stderr',
  ];
  for (const command of commands) {
    test(command, async () => {
      const list = parseCommand(command);
      const cwd = command.startsWith('cat ../../') ? join(fx.root, 'data', 'sub') : fx.root;
      const local = evaluate(fx.policy, list, { cwd, resolver: fx.resolver });
      const { decision } = await remoteCheck(list, { cwd });
      assert.deepEqual(comparable(decision), comparable(local));
      assert.equal(decision.cwd, local.cwd);
    });
  }

  test('a symlink loop is an error on the host too (the check denies)', async () => {
    const { decision } = await remoteCheck(parseCommand('cat data/loop1'));
    assert.equal(decision.effect, 'deny');
    assert.match(decision.reason, /cannot be checked: .*Too many levels of symbolic links/);
  });

  test('hostile file names: quotes, $, backticks, newlines (also trailing), spaces, a leading -, unicode', async () => {
    const names = ["it's", 'a"b', '$HOME', '`id`', 'new\nline', 'trailing\n', 'trailing\n\n', ' lead', '-n', '*', '~', 'ünï ☃'];
    for (const name of names) {
      writeFileSync(join(fx.root, 'data', name), 'x');
      symlinkSync(join(fx.root, 'data', name), join(fx.root, 'out', `link ${name}`));
    }
    const argv = ['cat', ...names.map((n) => `data/${n}`), ...names.map((n) => `out/link ${n}`), ...names.map((n) => `data/missing ${n}/x`)];
    const list = rawCommand(argv);
    const local = evaluate(fx.policy, list, { cwd: fx.root, resolver: fx.resolver });
    const { decision, trips: n } = await remoteCheck(list);
    assert.deepEqual(comparable(decision), comparable(local));
    assert.equal(n, 1);
    const resources = decision.checks.filter((c) => c.operation === 'read_file').map((c) => c.resource);
    assert.ok(resources.includes(join(fx.root, 'data', 'trailing\n\n')), 'trailing newlines are kept');
  });
});

describe('round trips', () => {
  test('one round trip for paths and names; a program-only command needs none while its answer is cached', async () => {
    const cache = new WhichCache(60_000);
    assert.equal((await remoteCheck(parseCommand('cat data/a.log'), { cache })).trips, 1);
    // Paths are always asked again (a symlink may have changed); the program comes from the cache.
    assert.equal((await remoteCheck(parseCommand('cat data/sub/b.log'), { cache })).trips, 1);
    assert.equal((await remoteCheck(parseCommand('grep'), { cache })).trips, 1);
    const again = await remoteCheck(parseCommand('grep'), { cache });
    assert.equal(again.trips, 0);
    assert.equal(again.decision.effect, 'allow');
    // Without a cache every command asks.
    assert.equal((await remoteCheck(parseCommand('grep'))).trips, 1);
  });

  test('under rules that only allow programs by name, bare program names need no round trip', async () => {
    const byName = parsePolicies(
      'policies:\n  by_name:\n    capabilities:\n      - { operation: execute_binary, resource: grep|cat }\n      - { operation: read_file, resource: "/**" }\n      - { operation: write_stdout, resource: null }\n',
      'by-name.yaml',
      {},
    ).get('by_name') as Policy;
    assert.equal(programsMatchByName(byName), true);
    const bare = await remoteCheck(parseCommand('grep'), { policy: byName });
    assert.equal(bare.trips, 0);
    assert.equal(bare.decision.effect, 'allow');
    // Where it lives is not known: it is named as written (as an agent host's `session new -c 'sleep 100'` and its
    // audit record show it), never as the stand-in path the check used.
    assert.equal(bare.decision.checks[0]?.resource, 'grep');
    assert.match(bare.decision.checks[0]?.reason ?? '', /^execute_binary grep: allowed by /);
    assert.doesNotMatch(JSON.stringify(bare.decision), new RegExp(BY_NAME_DIR.replace(/[()]/g, '\\$&')));
    const other = await remoteCheck(parseCommand('sort'), { policy: byName });
    assert.equal(other.trips, 0);
    assert.equal(other.decision.effect, 'deny', 'a name no rule allows is still denied');
    // A path argument, or a program given by path, still asks the host.
    assert.equal((await remoteCheck(parseCommand('cat data/a.log'), { policy: byName })).trips, 1);
    assert.equal((await remoteCheck(parseCommand(`${securePath}/grep x`), { policy: byName })).trips, 1);
    // A deny rule by name needs the real location (an alias of the denied program): the fixture's policies ask.
    assert.equal(programsMatchByName(fx.policies.get('no_multi') as Policy), false);
  });

  test('absent programs are cached too; the cache forgets after its TTL', async () => {
    let now = 0;
    const cache = new WhichCache(1000, () => now);
    assert.equal((await remoteCheck(parseCommand('nosuchprogram'), { cache })).trips, 1);
    assert.equal((await remoteCheck(parseCommand('nosuchprogram'), { cache })).trips, 0);
    now = 1000;
    assert.equal((await remoteCheck(parseCommand('nosuchprogram'), { cache })).trips, 1);
    const before = trips;
    const resolver = await prefetchResolver(fx.policy, parseCommand('nosuchprogram'), fx.root, lookup(cache));
    assert.equal(trips, before, 'answered from the cache');
    now = 5000;
    assert.equal(resolver.which('nosuchprogram'), null, 'a cached answer does not expire within one decision');
  });

  test('questions that depend on answers take a second round trip (a multi-call binary under its real name)', async () => {
    const policy = fx.policies.get('no_multi') as Policy;
    const list = parseCommand('mls data');
    const local = evaluate(policy, list, { cwd: fx.root, resolver: fx.resolver });
    assert.equal(local.effect, 'deny', 'mls is the file multi, which the policy denies');
    const { decision, trips: n } = await remoteCheck(list, { policy });
    assert.equal(n, 2);
    assert.deepEqual(comparable(decision), comparable(local));
  });

  test('the resolver answers only what was asked; names that cannot be programs and bad paths need no host', async () => {
    const resolver = await prefetchResolver(fx.policy, parseCommand('cat data/a.log'), fx.root, lookup());
    assert.equal(resolver.realpath('data/a.log', fx.root), join(fx.root, 'data', 'a.log'));
    assert.throws(() => resolver.realpath('data/sub/b.log', fx.root), /internal: the host was not asked to resolve/);
    assert.throws(() => resolver.which('grep'), /internal: the host was not asked where grep is/);
    assert.equal(resolver.which('a/b'), null);
    assert.throws(() => resolver.realpath('a\0b', fx.root), /NUL/);
    assert.throws(() => resolver.realpath('x'.repeat(5000), fx.root), /path too long/);
  });

  test('a host that cannot answer denies with the reason; an unreachable one is a TransportError', async () => {
    const list = parseCommand('cat data/a.log');
    const failing = (err: Error): RemoteLookup => ({ run: () => Promise.reject(err), securePath });
    const resolver = await prefetchResolver(fx.policy, list, fx.root, failing(new Error('script failed: exit status 2')));
    const decision = evaluate(fx.policy, list, { cwd: fx.root, resolver });
    assert.equal(decision.effect, 'deny');
    assert.match(decision.reason, /cannot be checked: the host could not answer: script failed: exit status 2/);
    await assert.rejects(prefetchResolver(fx.policy, list, fx.root, failing(new TransportError('h1: connection lost'))), TransportError);
  });

  test('through the pool: Host.resolverFor', async () => {
    const pool = new ConnectionPool({ knownHostsFile: fleet.knownHostsFile, securePath });
    try {
      const entry = inventoryEntry(h1);
      const host = pool.host(entry);
      const list = parseCommand('cat data/escape/f data/a.log');
      const resolver = await host.resolverFor?.(fx.policy, list, fx.root);
      assert.ok(resolver);
      const decision = evaluate(fx.policy, list, { cwd: fx.root, resolver });
      assert.deepEqual(comparable(decision), comparable(fx.check('cat data/escape/f data/a.log')));
      // The synchronous resolver of an SSH host refuses: answers must come from the host.
      assert.equal(evaluate(fx.policy, list, { cwd: fx.root, resolver: host.resolver }).effect, 'deny');
    } finally {
      await pool.closeAll();
    }
  });
});

describe('the script and its answers', () => {
  test('dash gives the same answers as the login shell', async () => {
    const paths = [join(fx.root, 'data', 'alias', 'key'), join(fx.root, 'out', 'dangle'), join(fx.root, 'data', 'loop1'), '/nonexistent/x'];
    const names = ['cat', 'mls', 'nosuch'];
    const script = resolverScript(paths, names, [securePath, '/usr/bin']);
    const viaBash = await captureScript(conn, script, { securePath, timeoutMs: 5000, maxBytes: 1 << 20 });
    const inner = wrapScript(script, { securePath, cwd: null, pipefail: false, marker: 'm:', killGraceMs: 500 });
    // Not inside captureScript's wrapper: a wrapper in a wrapper would read the outer one's /dev/null.
    const out: Buffer[] = [];
    const exit = await conn.exec(`exec /bin/dash -c ${quoteWord(inner)}`, { onStdout: (c) => out.push(c), onStderr: () => undefined });
    assert.equal(exit.code, 0);
    // The same but for the first token, the script's own pid.
    const afterPid = (b: Buffer): Buffer => b.subarray(b.indexOf(0) + 1);
    assert.ok(afterPid(Buffer.concat(out)).equals(afterPid(viaBash)));
    const answers = parseAnswers(viaBash, paths, names);
    assert.deepEqual(answers.paths.slice(0, 2), [{ path: join(fx.root, 'data', 'secret', 'key') }, { path: join(fx.root, 'outside', 'new') }]);
    assert.match(JSON.stringify(answers.paths[2]), /Too many levels of symbolic links/);
    assert.deepEqual(answers.paths[3], { path: '/nonexistent/x' });
    assert.deepEqual(answers.names, [{ path: join(fx.root, 'bin', 'cat') }, { path: join(fx.root, 'bin', 'multi') }, null]);
  });

  test('only regular executable files in the secure PATH count: not directories, not builtins', async () => {
    mkdirSync(join(securePath, 'adir'));
    writeFileSync(join(securePath, 'noexec'), '');
    const names = ['adir', 'noexec', 'cd', 'echo'];
    const out = await captureScript(conn, resolverScript([], names, [securePath]), { securePath, timeoutMs: 5000, maxBytes: 1 << 20 });
    assert.deepEqual(parseAnswers(out, [], names).names, [null, null, null, null]);
  });

  test('parseAnswers: the token format', () => {
    const buf = (s: string): Buffer => Buffer.from(s.replaceAll('|', '\0'));
    assert.deepEqual(parseAnswers(buf('m77|w/bin/x|w|/a|/real/x|ok|'), ['/a'], ['x', 'y']), {
      paths: [{ path: '/a' }],
      names: [{ path: '/real/x' }, null],
    });
    assert.deepEqual(parseAnswers(buf('m77|/a|each|/a|erealpath: /b: Permission denied|'), ['/a', '/b'], []), {
      paths: [{ path: '/a' }, { error: 'realpath: /b: Permission denied' }],
      names: [],
    });
    assert.throws(() => parseAnswers(buf('m77|/a|ok'), ['/a'], []), /does not end with NUL/);
    assert.throws(() => parseAnswers(buf('/a|ok|'), ['/a'], []), /expected the script's pid/);
    assert.throws(() => parseAnswers(buf('m77|/a|/b|ok|'), ['/a'], []), /expected 1 answers, got 2/);
    assert.throws(() => parseAnswers(buf('m77|x|ok|'), [], ['x']), /expected a program lookup/);
    assert.throws(() => parseAnswers(buf('m77|relative|ok|'), ['/a'], []), /unexpected answer/);
    // Under the script's own /proc entry, or a descriptor of realpath's that is a pipe: the program's own there.
    const own = parseAnswers(buf('m77|/proc/77/fdinfo/x|/proc/78/fd/pipe:[123]|/proc/1/status|/proc/770/x|ok|'), ['/proc/self/cwd/x', '/dev/stdout', '/proc/1/status', '/proc/770/x'], []);
    assert.match(JSON.stringify(own.paths[0]), /proc\/self\/cwd\/x leads into the running program's own \/proc entry/);
    assert.match(JSON.stringify(own.paths[1]), /dev\/stdout leads into/);
    assert.deepEqual(own.paths.slice(2), [{ path: '/proc/1/status' }, { path: '/proc/770/x' }]);
  });
});
