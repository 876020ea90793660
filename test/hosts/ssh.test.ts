// One SSH connection against real sshd hosts (test/fleet): host key checking, authentication, jump
// hosts, the remote wrapper (exit codes, byte-exact streams, quoting round trips, killing the remote
// command on timeout, abort and connection loss, in bash and in dash), the remote wrapper inside
// bubblewrap (what the sandbox lets through, on a host with it and one without), and dropped connections.
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { redactText } from '../../src/audit/redact.js';
import { parseCommand } from '../../src/command/parser.js';
import { quoteWord, renderCommandList } from '../../src/command/render.js';
import type { CommandList } from '../../src/command/types.js';
import type { HostExecRequest } from '../../src/hosts/types.js';
import type { HostAuth } from '../../src/hosts/inventory.js';
import { fingerprint } from '../../src/hosts/known-hosts.js';
import {
  captureScript,
  connectSsh,
  runCommand,
  SshError,
  wrapScript,
  type ConnectOptions,
  type RunOptions,
  type SshConnection,
  type SshEndpoint,
} from '../../src/hosts/ssh.js';
import type { ExecResult, SandboxSpec } from '../../src/exec/types.js';
import { type Fleet, type FleetHost, goneFrom, runningOn, startFleet, waitRunning } from '../fleet/fleet.js';
import { HolderSet } from '../../src/hosts/holder.js';
import { ShellExecutor } from '../../src/hosts/ssh-executor.js';
import { parseHolderProbe, probeScript } from '../../src/hosts/remote-sandbox.js';
import { rawCommand } from '../policy/fixture.js';
import { killHolders } from '../support/holders.js';
import { liveWithArg, parentOf, runningWithArg } from '../support/procs.js';

const execFileP = promisify(execFile);
const SECURE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let fleet: Fleet;
let h1: FleetHost;
let h2: FleetHost;
let h3: FleetHost;
let h4: FleetHost;
let dir: string;
const open: SshConnection[] = [];
const isRoot = process.getuid?.() === 0;

before(async () => {
  // h4 has no bubblewrap (a mount namespace of its own, which needs root).
  fleet = await startFleet({ count: 4, withoutBwrap: isRoot ? ['h4'] : [] });
  [h1, h2, h3, h4] = fleet.hosts as [FleetHost, FleetHost, FleetHost, FleetHost];
  dir = mkdtempSync(join(fleet.dir, 'ssh-test-'));
});

after(async () => {
  await Promise.all(open.map((c) => c.close()));
  await fleet.stop();
});

function endpoint(h: FleetHost, auth: HostAuth = { method: 'identity', file: h.identityFile }): SshEndpoint {
  return { name: h.name, address: h.address, port: h.port, user: h.user, auth };
}

async function connect(h: FleetHost, opts: Partial<ConnectOptions> = {}, auth?: HostAuth): Promise<SshConnection> {
  const conn = await connectSsh(endpoint(h, auth), { knownHostsFile: fleet.knownHostsFile, readyTimeoutMs: 5000, ...opts });
  open.push(conn);
  return conn;
}

/** The SshError a connect attempt fails with. */
async function refusal(h: FleetHost, opts: Partial<ConnectOptions> = {}, auth?: HostAuth): Promise<SshError> {
  try {
    await connect(h, opts, auth);
  } catch (err) {
    assert.ok(err instanceof SshError, `expected an SshError, got ${String(err)}`);
    return err;
  }
  throw new assert.AssertionError({ message: 'the connection was expected to fail' });
}

const stage = rawCommand;

interface Ran {
  result: ExecResult;
  stdout: Buffer;
  stderr: Buffer;
}

/** Runs argv (or a list) with `execute`, as runCommand or a holder set would, collecting its output. */
async function collect(
  execute: (req: HostExecRequest, opts: RunOptions) => Promise<ExecResult>,
  argv: string[] | CommandList,
  req: Partial<HostExecRequest>,
  opts: Partial<RunOptions>,
): Promise<Ran> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const result = await execute(
    {
      list: Array.isArray(argv) ? stage(argv) : argv,
      cwd: '/',
      timeoutMs: null,
      pipefail: false,
      output: { maxBytes: null, redact: [], redactBlocks: [] },
      sandbox: null,
      onStdout: (c) => out.push(c),
      onStderr: (c) => err.push(c),
      ...req,
    },
    { securePath: SECURE_PATH, killGraceMs: 500, ...opts },
  );
  return { result, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
}

/** SSH_TEST_RESIDENT=1 (ssh-resident.test.ts sets it): every wrapped command runs through its connection's resident executor (ssh-executor.ts), not a channel. */
const RESIDENT = process.env.SSH_TEST_RESIDENT === '1';
const executors = new WeakMap<SshConnection, Promise<ShellExecutor | null>>();

async function resident(conn: SshConnection): Promise<Partial<RunOptions>> {
  if (!RESIDENT) return {};
  let started = executors.get(conn);
  if (!started) executors.set(conn, (started = ShellExecutor.start(conn)));
  const executor = await started;
  assert.ok(executor, `the resident executor should start on ${conn.endpoint.name}`);
  return { exec: (command, o, how) => executor.exec(command, o, how) };
}

async function run(conn: SshConnection, argv: string[] | CommandList, req: Partial<HostExecRequest> = {}, opts: Partial<RunOptions> = {}): Promise<Ran> {
  const via = await resident(conn);
  return collect((r, o) => runCommand(conn, r, o), argv, req, { ...via, ...opts });
}

/** Runs a raw command string (no wrapper of ours) and collects its output. */
async function raw(conn: SshConnection, command: string, stop?: AbortSignal): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  const out: Buffer[] = [];
  let stderr = '';
  const exit = await conn.exec(command, { onStdout: (c) => out.push(c), onStderr: (c) => (stderr += c.toString()), ...(stop ? { stop } : {}) });
  return { code: exit.code, stdout: Buffer.concat(out), stderr };
}


function knownHosts(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

async function keygen(name: string, passphrase = ''): Promise<string> {
  const file = join(dir, name);
  await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', '', '-f', file]);
  return file;
}

describe('host keys', () => {
  test('a changed key is refused, naming the host and the lines', async () => {
    const [, type, key] = h2.hostKeyLine.split(' ');
    const file = knownHosts('changed', `${h1.hostKeyLine.split(' ')[0]} ${type} ${key}\n`);
    const err = await refusal(h1, { knownHostsFile: file });
    assert.equal(err.kind, 'host-key');
    assert.match(err.message, /HOST KEY CHANGED for h1 .*line 1/);
    assert.equal(err.transient, false);
    // --accept-new trusts unknown keys only, never a changed one.
    assert.match((await refusal(h1, { knownHostsFile: file, acceptNew: true })).message, /CHANGED/);
    assert.equal(readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 1, 'nothing was appended');
  });

  test('an unknown key is refused; acceptNew trusts and records it, and the next connect trusts it', async () => {
    const file = knownHosts('empty', '');
    const err = await refusal(h1, { knownHostsFile: file });
    assert.equal(err.kind, 'host-key');
    assert.match(err.message, /host key for h1 .* is not in .*empty: refusing\. Fingerprint SHA256:/);

    const accepted: Array<[string, string]> = [];
    const conn = await connect(h1, { knownHostsFile: file, acceptNew: true, onHostKeyAccepted: (host, fp) => accepted.push([host, fp]) });
    const [, type, key] = h1.hostKeyLine.split(' ');
    assert.deepEqual(accepted, [['h1', fingerprint(key as string)]]);
    assert.equal(readFileSync(file, 'utf8'), `${h1.hostKeyLine.split(' ')[0]} ${type} ${key}\n`);
    assert.equal((await run(conn, ['true'])).result.exitCode, 0);

    const again: string[] = [];
    await connect(h1, { knownHostsFile: file, onHostKeyAccepted: (host) => again.push(host) });
    assert.deepEqual(again, [], 'a known key is not "accepted" again');
  });

  test('hashed known_hosts entries (ssh-keygen -H) are trusted', async () => {
    const file = knownHosts('hashed', readFileSync(fleet.knownHostsFile, 'utf8'));
    await execFileP('ssh-keygen', ['-H', '-f', file]);
    assert.doesNotMatch(readFileSync(file, 'utf8'), new RegExp(h1.address.replaceAll('.', '\\.')), 'the file is hashed');
    const conn = await connect(h1, { knownHostsFile: file });
    assert.equal((await run(conn, ['true'])).result.exitCode, 0);
  });

  test('a revoked key is refused even though another line trusts it', async () => {
    const file = knownHosts('revoked', `${h1.hostKeyLine}\n@revoked ${h1.hostKeyLine}\n`);
    const err = await refusal(h1, { knownHostsFile: file });
    assert.match(err.message, /REVOKED/);
  });
});

describe('authentication', () => {
  test('a key the host does not authorize fails with a clear message', async () => {
    const wrong = await keygen('wrong');
    const err = await refusal(h1, {}, { method: 'identity', file: wrong });
    assert.equal(err.kind, 'auth');
    assert.match(err.message, new RegExp(`^h1 \\(.*\\): authentication as ${h1.user} failed \\(tried key .*wrong\\)$`));
  });

  test('a passphrase-protected key is refused before connecting, pointing at ssh-agent', async () => {
    const locked = await keygen('locked', 'secret phrase');
    const err = await refusal(h1, {}, { method: 'identity', file: locked });
    assert.equal(err.kind, 'config');
    assert.match(err.message, /protected by a passphrase.*ssh-add/);
    assert.match((await refusal(h1, {}, { method: 'identity', file: join(dir, 'missing') })).message, /identity file \S*\/missing does not exist: make the key there \(ssh-keygen -t ed25519 -f \S*\/missing, its \.pub in the host's authorized_keys\)/);
  });

  test('default: the agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa', async () => {
    const home = join(dir, 'home');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    const err = await refusal(h1, { env: { HOME: home } }, { method: 'default' });
    assert.match(err.message, /no credentials \(SSH_AUTH_SOCK is not set and ~\/\.ssh has no usable id_ed25519, id_ecdsa, id_rsa\): give the host an identity file/);
    assert.equal(redactText(err.message), err.message, 'the audit trail keeps the message as it is');
    copyFileSync(h1.identityFile, join(home, '.ssh', 'id_rsa'));
    chmodSync(join(home, '.ssh', 'id_rsa'), 0o600);
    const conn = await connect(h1, { env: { HOME: home } }, { method: 'default' });
    assert.equal((await run(conn, ['true'])).result.exitCode, 0);
  });

  test('ssh-agent (SSH_AUTH_SOCK)', async () => {
    const sock = join(dir, 'agent.sock');
    const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100; i++) {
        try {
          await execFileP('ssh-add', [h1.identityFile], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      const conn = await connect(h1, { env: { SSH_AUTH_SOCK: sock } }, { method: 'agent' });
      assert.equal((await run(conn, ['true'])).result.exitCode, 0);
      assert.match((await refusal(h1, { env: {} }, { method: 'agent' })).message, /SSH_AUTH_SOCK is not set/);
    } finally {
      agent.kill();
    }
  });

  test('password from an environment variable: unset is a configuration error, a wrong one fails auth', async () => {
    assert.match((await refusal(h1, { env: {} }, { method: 'password', env: 'H1_PASSWORD' })).message, /\$H1_PASSWORD, which is not set/);
    const err = await refusal(h1, { env: { H1_PASSWORD: 'nope' } }, { method: 'password', env: 'H1_PASSWORD' });
    assert.equal(err.kind, 'auth');
  });

  test('nothing listening: connection refused, transient', async () => {
    const err = await refusal({ ...h1, port: 1 });
    assert.equal(err.kind, 'connect');
    assert.equal(err.transient, true);
    assert.match(err.message, /^h1 \(.*:1\): cannot connect: .*ECONNREFUSED/);
  });
});

describe('the remote wrapper', () => {
  let conn: SshConnection;
  before(async () => {
    conn = await connect(h1);
  });

  test('exit codes: 0, 1, 42, and 128+N for a stage killed by signal N', async () => {
    assert.equal((await run(conn, ['true'])).result.exitCode, 0);
    assert.equal((await run(conn, ['false'])).result.exitCode, 1);
    assert.equal((await run(conn, ['sh', '-c', 'exit 42'])).result.exitCode, 42);
    const killed = await run(conn, ['sh', '-c', 'kill -s KILL $$']);
    assert.equal(killed.result.exitCode, 137);
    assert.equal(killed.result.error, null);
  });

  test('stdout and stderr are separate and byte-exact, binary included (1 MiB each)', async () => {
    const data = randomBytes(1 << 20);
    const file = join(dir, 'blob');
    writeFileSync(file, data);
    const { result, stdout, stderr } = await run(conn, ['sh', '-c', 'cat "$0"; cat "$0" >&2', file]);
    assert.equal(result.exitCode, 0);
    assert.ok(stdout.equals(data), 'stdout');
    assert.ok(stderr.equals(data), 'stderr');
    assert.equal(result.bytesOut, data.length);
    assert.equal(result.bytesErr, data.length);
  });

  test('lists keep sh semantics; PATH is the secure PATH', async () => {
    const list: CommandList = {
      items: [
        { op: null, pipeline: { stages: [{ argv: ['false'], redirects: [], pos: 0 }] } },
        { op: '||', pipeline: { stages: [{ argv: ['printenv', 'PATH'], redirects: [], pos: 0 }, { argv: ['tr', 'a-z', 'A-Z'], redirects: [], pos: 0 }] } },
        { op: '&&', pipeline: { stages: [{ argv: ['sh', '-c', 'exit 3'], redirects: [], pos: 0 }] } },
      ],
    };
    const { result, stdout } = await run(conn, list);
    assert.equal(stdout.toString(), `${SECURE_PATH.toUpperCase()}\n`);
    assert.equal(result.exitCode, 3);
  });

  test('cwd: `cd --` first; an unusable one is refused with 125 and nothing on the streams', async () => {
    const odd = join(dir, "-n it's $HOME `x` \\ ");
    mkdirSync(odd);
    assert.equal((await run(conn, ['pwd'], { cwd: odd })).stdout.toString(), `${odd}\n`);
    const refused = await run(conn, ['true'], { cwd: join(dir, 'nope') });
    assert.deepEqual(
      { code: refused.result.exitCode, kind: refused.result.errorKind, out: refused.stdout.length, err: refused.stderr.length },
      { code: 125, kind: 'cwd', out: 0, err: 0 },
    );
    assert.equal(refused.result.error, `cannot use working directory ${join(dir, 'nope')} on h1`);
  });

  test('pipefail; a shell without it (dash before 0.5.13) refuses instead of ignoring it', async () => {
    const list: CommandList = {
      items: [{ op: null, pipeline: { stages: [{ argv: ['sh', '-c', 'exit 7'], redirects: [], pos: 0 }, { argv: ['true'], redirects: [], pos: 0 }] } }],
    };
    assert.equal((await run(conn, list)).result.exitCode, 0);
    assert.equal((await run(conn, list, { pipefail: true })).result.exitCode, 7);
    const script = wrapScript(renderCommandList(list), { securePath: SECURE_PATH, cwd: null, pipefail: true, marker: 'm:', killGraceMs: 500 });
    const dashHasPipefail = spawnSync('dash', ['-c', 'set -o pipefail']).status === 0;
    const expected = dashHasPipefail ? { code: 7, stderr: 'm:run\n' } : { code: 125, stderr: 'm:pipefail\n' };
    const { code, stderr } = await raw(conn, `exec dash -c ${quoteWord(script)}`);
    assert.deepEqual({ code, stderr }, expected);
  });

  test('output cap and redaction go through the OutputGate, and the capped command is killed', async () => {
    const capped = await run(conn, ['yes', 'remux-cap-test'], { output: { maxBytes: 100, redact: [], redactBlocks: [] } });
    assert.equal(capped.result.truncated, true);
    assert.equal(capped.stdout.length, 100);
    assert.ok(await goneFrom(h1, '^yes remux-cap-test$', 2000));
    const redacted = await run(conn, ['echo', 'user=ann token=s3cret'], { output: { maxBytes: null, redact: [/token=\S+/], redactBlocks: [] } });
    assert.equal(redacted.stdout.toString(), 'user=ann [REDACTED]\n');
  });
});

// Hostile arguments through the real remote shell, bytes compared: the quoting round trip.
const HOSTILE = [
  '', ' ', "'", '"', "''", "'\\''", '$HOME', '${HOME}', '$(id)', '`id`', '\\', '\\n', 'a\nb', '\n', 'tab\there', '\r', '\x01\x1f\x7f',
  'héllo wörld', '🌍 ζ 日本語', 'e\u0301', '-n', '-e', '--', '-', '*', '?', '[a-z]', '~', '~root', '~/x', 'a=b', '=x', '!', '!!', '#', '# c',
  ';', '&', '&&', '|', '||', '>', '<', '>>', '2>&1', '{}', '{a,b}', '(', ')', '%s', '%', 'if', 'then', 'time', 'x'.repeat(10_000),
];

describe('quoting round trip with hostile argv', () => {
  let conn: SshConnection;
  before(async () => {
    conn = await connect(h2);
  });
  const expected = Buffer.concat(HOSTILE.map((a) => Buffer.from(`${a}\0`)));

  test('through the login shell (bash): printf %s\\0 gives back every byte', async () => {
    const { result, stdout } = await run(conn, ['printf', '%s\\0', ...HOSTILE]);
    assert.equal(result.exitCode, 0);
    assert.ok(stdout.equals(expected), 'bytes differ');
  });

  test('through dash (Debian /bin/sh)', async () => {
    const script = wrapScript(renderCommandList(stage(['printf', '%s\\0', ...HOSTILE])), {
      securePath: SECURE_PATH,
      cwd: null,
      pipefail: false,
      marker: 'm:',
      killGraceMs: 500,
    });
    const { code, stdout } = await raw(conn, `exec dash -c ${quoteWord(script)}`);
    assert.equal(code, 0);
    assert.ok(stdout.equals(expected), 'bytes differ');
  });

  test('a hostile program path and redirection target', async () => {
    const sub = join(dir, "we ird $x `y` 'q'");
    mkdirSync(sub);
    const program = join(sub, '-prog;');
    writeFileSync(program, '#!/bin/sh\nprintf "%s\\0" "$@"\n', { mode: 0o755 });
    const target = join(sub, '>out *');
    const list: CommandList = {
      items: [{ op: null, pipeline: { stages: [{ argv: [program, ...HOSTILE], redirects: [{ kind: 'write', fd: 1, path: target, append: false, pos: 0 }], pos: 0 }] } }],
    };
    assert.equal((await run(conn, list)).result.exitCode, 0);
    assert.ok(readFileSync(target).equals(expected));
  });
});

describe('killing the remote command', () => {
  // The login shell (bash) runs the wrapper itself; for dash the wrapper is handed to `exec dash -c`.
  const shells: Array<[string, (script: string) => string]> = [
    ['bash', (script) => script],
    ['dash', (script) => `exec dash -c ${quoteWord(script)}`],
  ];
  const wrapped = (argv: string[]): string =>
    wrapScript(renderCommandList(stage(argv)), { securePath: SECURE_PATH, cwd: null, pipefail: false, marker: 'm:', killGraceMs: 500 });
  let conn: SshConnection;
  before(async () => {
    conn = await connect(h3);
  });

  test('timeout: 124, and the remote process is gone', async () => {
    const started = Date.now();
    const { result } = await run(conn, ['sleep', '41'], { timeoutMs: 300 });
    assert.equal(result.exitCode, 124);
    assert.equal(result.timedOut, true);
    assert.ok(Date.now() - started < 1500, 'returns promptly');
    assert.ok(await goneFrom(h3, '^sleep 41$', 1000), 'sleep 41 was killed');
  });

  test('abort: 130, and the whole process group is gone', async () => {
    const controller = new AbortController();
    const pending = run(conn, ['sh', '-c', 'sleep 42.1 & sleep 42.2; wait'], { signal: controller.signal });
    await waitRunning(h3, '^sleep 42.2$');
    controller.abort();
    const { result } = await pending;
    assert.equal(result.exitCode, 130);
    assert.equal(result.aborted, true);
    assert.ok(await goneFrom(h3, '^sleep 42\\.[12]$', 1000));
  });

  for (const [name, shell] of shells) {
    test(`${name}: TERM, then KILL after the grace for a command that ignores TERM`, async () => {
      const n = name === 'bash' ? '43.1' : '43.2';
      const stop = new AbortController();
      const pending = raw(conn, shell(wrapped(['sh', '-c', `trap '' TERM; sleep ${n}; echo survived`])), stop.signal);
      await waitRunning(h3, `^sleep ${n}$`);
      stop.abort();
      const { stdout } = await pending;
      assert.ok(await goneFrom(h3, `^sleep ${n}$`, 2000), `sleep ${n} was killed`);
      assert.equal(stdout.toString(), '');
    });

    test(`${name}: a lost connection kills the command too`, async () => {
      const n = name === 'bash' ? '44.1' : '44.2';
      const doomed = await connect(h3);
      const pending = raw(doomed, shell(wrapped(['sleep', n]))).catch((err: unknown) => err);
      await waitRunning(h3, `^sleep ${n}$`);
      await doomed.close();
      assert.ok((await pending) instanceof SshError);
      assert.ok(await goneFrom(h3, `^sleep ${n}$`, 1500), `sleep ${n} was killed`);
    });

    test(`${name}: normal completion returns the status and leaves no watcher behind`, async () => {
      const marker = `remux-done-${name}`;
      const { code } = await raw(conn, shell(wrapped(['sh', '-c', 'exit 42', marker])));
      assert.equal(code, 42);
      assert.equal(await runningOn(h3, marker), false);
    });
  }
});

/** The connection's long-lived sandboxes (holder mode), made as the pool makes them: after the probe. */
const holderSets = new Map<SshConnection, HolderSet | null>();
async function holdersOf(conn: SshConnection): Promise<HolderSet | null> {
  if (!holderSets.has(conn)) {
    const out = await captureScript(conn, probeScript(SECURE_PATH), { securePath: SECURE_PATH, timeoutMs: 10_000, maxBytes: 65536 });
    const { helper } = parseHolderProbe(out);
    holderSets.set(conn, helper === null ? null : new HolderSet(conn, helper));
  }
  return holderSets.get(conn) ?? null;
}

for (const mode of ['bwrap', 'holder'] as const) describe(`inside bubblewrap (${mode === 'bwrap' ? 'a bwrap per command' : 'long-lived sandboxes'})`, () => {
  /** A sandboxed command: with its own bwrap, or in its spec's holder on that connection. */
  const sandboxRun = async (c: SshConnection, argv: string[] | CommandList, req: Partial<HostExecRequest> = {}, opts: Partial<RunOptions> = {}): Promise<Ran> => {
    // As the pool does: a host that cannot have them (no bwrap) runs each command on its own.
    const holders = mode === 'holder' ? await holdersOf(c) : null;
    if (holders === null) return run(c, argv, req, opts);
    return collect((r, o) => holders.run(r, o), argv, req, { ...(await resident(c)), ...opts });
  };
  const SECRET = `TOP-SECRET-${randomBytes(6).toString('hex')}`;
  let conn: SshConnection;
  let root: string;
  let box: string;
  let out: string;
  let spec: SandboxSpec;
  before(async () => {
    conn = await connect(h1);
    // box: readable, with a link to a secret outside and a hidden part; out: writable, with a read-only part.
    root = mkdtempSync(join(dir, 'sandbox-'));
    box = join(root, 'box');
    out = join(root, 'out');
    mkdirSync(join(box, 'private'), { recursive: true });
    mkdirSync(join(out, 'keep'), { recursive: true });
    writeFileSync(join(box, 'data.txt'), 'visible\n');
    writeFileSync(join(box, 'private', 'hidden.txt'), `${SECRET} hidden\n`);
    writeFileSync(join(root, 'secret.txt'), `${SECRET}\n`);
    symlinkSync(join(root, 'secret.txt'), join(box, 'link'));
    spec = { read: [box], write: [out], hide: [join(box, 'private')], readOnly: [join(out, 'keep')], network: false, owner: 'test' };
  });
  const boxed = (argv: string[] | string | CommandList, req: Partial<HostExecRequest> = {}, opts: Partial<RunOptions> = {}): Promise<Ran> =>
    sandboxRun(conn, typeof argv === 'string' ? parseCommand(argv) : argv, { cwd: box, sandbox: spec, ...req }, opts);
  const text = (r: Ran): string => r.stdout.toString() + r.stderr.toString();

  test('a symlink inside the policy paths leads nowhere: grep -R, cat and a redirection do not print the secret', async () => {
    const plain = await run(conn, ['grep', '-R', 'TOP-SECRET', box]);
    assert.match(plain.stdout.toString(), new RegExp(SECRET), 'unsandboxed, grep -R follows the link');
    for (const command of [`grep -R TOP-SECRET ${box}`, `cat ${box}/link`, 'cat link', `cat < ${box}/link`, `cat ${box}/private/hidden.txt`]) {
      const r = await boxed(command);
      assert.doesNotMatch(text(r), new RegExp(SECRET), command);
      assert.notEqual(r.result.exitCode, 0, command);
    }
    assert.equal((await boxed(`cat ${box}/data.txt`)).stdout.toString(), 'visible\n');
    assert.equal((await boxed(['ls', '-A', join(box, 'private')])).stdout.toString(), '', 'a hidden directory is empty');
  });

  test('writes: inside write paths only, not under their read-only parts; redirections happen inside', async () => {
    const made = await boxed(`echo made > ${out}/made && cat ${out}/made | tr a-z A-Z`);
    assert.equal(made.stdout.toString(), 'MADE\n', made.stderr.toString());
    assert.equal(readFileSync(join(out, 'made'), 'utf8'), 'made\n');
    for (const target of [join(box, 'new'), join(out, 'keep', 'new'), `/usr/remux-${randomBytes(4).toString('hex')}`]) {
      const r = await boxed(`echo x > ${target}`);
      assert.notEqual(r.result.exitCode, 0, target);
      assert.match(r.stderr.toString(), /Read-only file system/, target);
      assert.equal(existsSync(target), false, target);
    }
    // Outside every policy path the host's file system is not there at all.
    const elsewhere = join(root, 'elsewhere');
    await boxed(['touch', elsewhere]);
    assert.equal(existsSync(elsewhere), false);
  });

  test('/tmp is a fresh one, unless a policy path covers it', async () => {
    const mark = `/tmp/remux-host-only-${randomBytes(4).toString('hex')}`;
    writeFileSync(mark, 'x');
    try {
      const r = await boxed(['sh', '-c', 'test -e "$0" && echo seen; echo inside > "$0.in"; cat "$0.in"', mark]);
      assert.equal(r.stdout.toString(), 'inside\n', r.stderr.toString());
      assert.equal(existsSync(`${mark}.in`), false);
      const covered = await boxed(['test', '-e', mark], { sandbox: { ...spec, read: [...spec.read, '/tmp'] } });
      assert.equal(covered.result.exitCode, 0);
    } finally {
      rmSync(mark);
    }
  });

  test('no network unless the policy grants it', async () => {
    const server = h1.spawn([process.execPath, '-e', "require('net').createServer((s) => s.end('hello\\n')).listen(0, '0.0.0.0', function () { console.log(this.address().port); })"]);
    try {
      const port = await new Promise<string>((resolve, reject) => {
        server.stdout?.once('data', (d: Buffer) => resolve(d.toString().trim()));
        server.once('exit', () => reject(new Error('the listener exited')));
      });
      const connectTo = (address: string): string[] => ['bash', '-c', 'exec 3<>"/dev/tcp/$0/$1" && cat <&3', address, port];
      for (const address of new Set([h1.address, '127.0.0.1'])) {
        assert.equal((await run(conn, connectTo(address))).stdout.toString(), 'hello\n', `unsandboxed to ${address}`);
        const r = await boxed(connectTo(address));
        assert.equal(r.stdout.toString(), '', `sandboxed to ${address}`);
        assert.notEqual(r.result.exitCode, 0);
        assert.match(r.stderr.toString(), /Network is unreachable|Connection refused/);
        const granted = await boxed(connectTo(address), { sandbox: { ...spec, network: true } });
        assert.equal(granted.stdout.toString(), 'hello\n', `network: true, to ${address}`);
      }
    } finally {
      server.kill();
    }
  });

  test('a working directory the sandbox does not show is refused (125) saying what to do; nothing runs', async () => {
    for (const cwd of [root, join(box, 'private'), '/tmp', '/root']) {
      const r = await boxed(['touch', join(out, 'ran')], { cwd, policy: 'boxed' });
      assert.deepEqual(
        { code: r.result.exitCode, kind: r.result.errorKind, out: r.stdout.length, err: r.stderr.length },
        { code: 125, kind: 'sandbox', out: 0, err: 0 },
        cwd,
      );
      assert.equal(r.result.error, `working directory ${cwd} is not visible in the sandbox of policy boxed on h1; give --cwd inside the policy's paths (${box}, ${out})`);
    }
    assert.equal(existsSync(join(out, 'ran')), false);
    // By its physical path; system directories are visible too.
    symlinkSync(out, join(root, 'to-out'));
    assert.equal((await boxed(['pwd'], { cwd: join(root, 'to-out') })).stdout.toString(), `${out}\n`);
    assert.equal((await boxed(['pwd'], { cwd: '/usr/bin' })).stdout.toString(), '/usr/bin\n');
  });

  test('exit statuses as outside; 127 for a program the sandbox does not show, 126 for one it cannot run', async () => {
    assert.equal((await boxed(['sh', '-c', 'exit 42'])).result.exitCode, 42);
    assert.equal((await boxed(['sh', '-c', 'kill -s KILL $$'])).result.exitCode, 137);
    const outside = join(root, 'prog');
    writeFileSync(outside, '#!/bin/sh\necho ran\n', { mode: 0o755 });
    const missing = await boxed([outside]);
    assert.deepEqual({ code: missing.result.exitCode, out: missing.stdout.toString() }, { code: 127, out: '' });
    writeFileSync(join(box, 'noexec'), 'echo ran\n', { mode: 0o644 });
    assert.equal((await boxed([join(box, 'noexec')])).result.exitCode, 126);
    const list = parseCommand("sh -c 'exit 7' | true");
    assert.equal((await boxed(list, { pipefail: true })).result.exitCode, 7, 'pipefail: the login shell (bash) runs the list inside too');
  });

  test('the environment is the minimal one: PATH is the secure PATH, nothing of the session leaks in', async () => {
    const r = await boxed(['env']);
    const names = r.stdout.toString().trim().split('\n').map((l) => l.split('=')[0]);
    assert.ok(r.stdout.toString().includes(`PATH=${SECURE_PATH}\n`));
    assert.deepEqual(names.filter((n) => !['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TERM', 'PWD', 'SHLVL', '_'].includes(n ?? '')), []);
  });

  test('hostile argv round trip through the sandbox (quoted twice) gives back every byte', async () => {
    const { result, stdout } = await boxed(['printf', '%s\\0', ...HOSTILE], { cwd: '/usr' });
    assert.equal(result.exitCode, 0);
    assert.ok(stdout.equals(Buffer.concat(HOSTILE.map((a) => Buffer.from(`${a}\0`)))), 'bytes differ');
  });

  test('timeout, abort and a lost connection kill everything inside bwrap', async () => {
    const started = Date.now();
    const timedOut = await boxed(['sleep', '45.1'], { timeoutMs: 300 });
    assert.equal(timedOut.result.exitCode, 124);
    assert.ok(Date.now() - started < 1500, 'returns promptly');
    assert.ok(await goneFrom(h1, '^sleep 45.1$', 1000), 'sleep 45.1 was killed');

    const controller = new AbortController();
    const pending = boxed(['sh', '-c', "trap '' TERM; sleep 45.2 & sleep 45.3; wait"], { signal: controller.signal });
    await waitRunning(h1, '^sleep 45.3$');
    controller.abort();
    assert.equal((await pending).result.exitCode, 130);
    assert.ok(await goneFrom(h1, '^sleep 45\\.[23]$', 1000), 'the whole sandbox was killed');

    const doomed = await connect(h1);
    const lost = sandboxRun(doomed, ['sleep', '45.4'], { cwd: box, sandbox: spec }).catch((err: unknown) => err);
    await waitRunning(h1, '^sleep 45.4$');
    await doomed.close();
    assert.ok((await lost) instanceof SshError);
    assert.ok(await goneFrom(h1, '^sleep 45.4$', 1500), 'sleep 45.4 was killed');
  });

  test('bwrap failing to start is a refusal with its words; nothing runs unsandboxed', async () => {
    const fake = join(root, 'fakebin');
    mkdirSync(fake);
    writeFileSync(join(fake, 'bwrap'), '#!/bin/sh\necho "bwrap: setting up uid map: Permission denied" >&2\nexit 1\n', { mode: 0o755 });
    const r = await boxed(['touch', join(out, 'ran-fake')], {}, { securePath: `${fake}:${SECURE_PATH}` });
    assert.deepEqual({ code: r.result.exitCode, kind: r.result.errorKind, out: r.stdout.length, err: r.stderr.length }, { code: 125, kind: 'sandbox_unavailable', out: 0, err: 0 });
    // Long-lived sandboxes: the holder fails to start too, and the command falls back to its own bwrap.
    assert.equal(r.result.error, 'bwrap could not start the sandbox on h1 (bwrap: setting up uid map: Permission denied); the command was not run');
    assert.equal(existsSync(join(out, 'ran-fake')), false);
  });

  test('a host without bwrap refuses the sandboxed command; nothing runs', { skip: !isRoot && 'a host without bwrap needs root' }, async () => {
    const c4 = await connect(h4);
    const marker = join(out, 'ran-on-h4');
    const r = await sandboxRun(c4, ['touch', marker], { cwd: out, sandbox: spec });
    assert.equal(r.result.errorKind, 'sandbox_unavailable');
    assert.equal(r.result.error, `h4 cannot sandbox the command: no bwrap in PATH ${SECURE_PATH}; the command was not run`);
    assert.equal(existsSync(marker), false);
    assert.equal((await run(c4, ['touch', marker], { cwd: out })).result.exitCode, 0, 'unsandboxed it runs');
  });

  test('no capabilities inside (bounding set included), no_new_privs, its own /proc', async () => {
    const r = await boxed(['grep', '-E', '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):', '/proc/self/status']);
    assert.deepEqual(
      r.stdout.toString().trim().split('\n').map((l) => l.split(/\s+/)),
      [['CapInh:', '0000000000000000'], ['CapPrm:', '0000000000000000'], ['CapEff:', '0000000000000000'], ['CapBnd:', '0000000000000000'], ['CapAmb:', '0000000000000000'], ['NoNewPrivs:', '1']],
      r.stderr.toString(),
    );
    // PID namespace: the sandbox's processes only (bwrap's init, the command and what it started).
    const procs = await boxed(['sh', '-c', 'ls /proc | grep -c "^[0-9]"']);
    assert.ok(Number(procs.stdout.toString()) < 10, procs.stdout.toString());
  });

  test('one sandbox per spec and owner: reused by an owner\'s commands, restarted after it was killed', { skip: mode !== 'holder' && 'long-lived sandboxes only' }, async () => {
    const ns = async (owner: string): Promise<string> => (await boxed(['readlink', '/proc/self/ns/pid', '/proc/self/ns/mnt'], { sandbox: { ...spec, owner } })).stdout.toString();
    const first = await ns('alice');
    assert.match(first, /^pid:\[\d+\]\nmnt:\[\d+\]\n$/);
    assert.equal(await ns('alice'), first, 'the same owner reuses its sandbox');
    const bob = await ns('bob');
    assert.notEqual(bob, first, 'another owner gets another sandbox');
    assert.notEqual((await run(conn, ['readlink', '/proc/self/ns/pid', '/proc/self/ns/mnt'])).stdout.toString(), first, 'not the host\'s');
    const holders = await holdersOf(conn);
    assert.ok(holders);
    // Killed under us: the next command gets a new one (nothing runs in a namespace that is not the holder's).
    const killed = await holders.pids();
    await killHolders(holders);
    const again = await ns('alice');
    assert.match(again, /^pid:\[\d+\]\nmnt:\[\d+\]\n$/);
    // Told by its init, not by the namespaces' numbers: the kernel gives the next namespace made a number just
    // freed, so a new sandbox could show the old one's (it did in CI).
    const init = (await holders.pids()).find((pid, i) => i % 2 === 0 && !killed.includes(pid));
    assert.ok(init, 'a new sandbox');
    assert.equal(again, ['pid', 'mnt'].map((n) => `${readlinkSync(`/proc/${init}/ns/${n}`)}\n`).join(''), 'the command ran in it');
    assert.equal(await ns('alice'), again);
  });

  test('the helper that enters a holder is on no disk, and nothing in a sandbox can reach it', { skip: mode !== 'holder' && 'long-lived sandboxes only' }, async () => {
    await boxed(['true'], { sandbox: { ...spec, owner: 'carol' } });
    const holders = await holdersOf(conn);
    assert.ok(holders);
    const [init, keeper] = (await holders.pids()).slice(-2);
    assert.ok(init && keeper);
    // The keeper holds remux-sandbox-enter as an fd to a deleted file, in a directory that is gone too.
    const link = readlinkSync(`/proc/${keeper}/fd/5`);
    assert.match(link, /\/remux-enter\.[A-Za-z0-9]+\/e \(deleted\)$/);
    assert.equal(existsSync(dirname(link.replace(/ \(deleted\)$/, ''))), false);
    // The sandbox's own processes do not include the keeper or bwrap: its /proc shows its PID namespace only.
    const r = await boxed(['ls', '/proc'], { sandbox: { ...spec, owner: 'carol' } });
    const pids = r.stdout.toString().split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
    assert.ok(pids.length > 0 && pids.every((p) => p < 100), `pids seen inside: ${pids.join(' ')}`);
    assert.notEqual((await boxed(['cat', `/proc/${keeper}/stat`], { sandbox: { ...spec, owner: 'carol' } })).result.exitCode, 0, 'the keeper is not visible inside');
  });

  test("through the resident executor, a sandboxed command is forked by the holder's stage server; one too large for it: the helper runs it the same",  { skip: (mode !== 'holder' || !RESIDENT) && 'long-lived sandboxes through the resident executor only' }, async () => {
    const s = { ...spec, owner: 'dave' };
    /** `sleep SECONDS` (an argument no other test uses) running in the sandbox, and its parent's program. */
    const sleeping = async (seconds: string, pad = ''): Promise<{ pid: number; parent: string; ran: Promise<Ran> }> => {
      // env executes sleep in its own process: the stage is sleep.
      const ran = boxed(['env', `PAD1=${pad}`, `PAD2=${pad}`, 'sleep', seconds], { sandbox: s });
      for (let i = 0; i < 500; i++) {
        const [pid] = runningWithArg(seconds, 'sleep');
        if (pid !== undefined) return { pid, parent: readlinkSync(`/proc/${parentOf(pid)}/exe`), ran };
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error(`sleep ${seconds} did not start`);
    };
    const served = await sleeping('7.625');
    // Forked by the server with CLONE_PARENT: the interpreter is its parent, not remux-sandbox-enter.
    assert.match(served.parent, /python/);
    /** The stage servers of the sandbox this process is in (each holder has its own). */
    const serversOf = (pid: number): number[] =>
      liveWithArg('--serve').filter((p) => parentOf(p) === parentOf(pid) && readlinkSync(`/proc/${p}/ns/mnt`) === readlinkSync(`/proc/${pid}/ns/mnt`));
    const servers = serversOf(served.pid);
    assert.equal(servers.length, 1, 'one stage server for the holder');
    process.kill(served.pid, 'SIGTERM');
    const servedEnd = (await served.ran).result;
    // More than a server takes in one request (128 KiB; an argument takes 128 KiB at most): remux-sandbox-enter runs it.
    const helped = await sleeping('7.875', 'x'.repeat(70 * 1024));
    assert.match(helped.parent, /\/e \(deleted\)$/, "remux-sandbox-enter, from the keeper's fd");
    process.kill(helped.pid, 'SIGTERM');
    const helpedEnd = (await helped.ran).result;
    assert.deepEqual([servedEnd.exitCode, servedEnd.signal], [helpedEnd.exitCode, helpedEnd.signal], 'the same status either way');
    assert.equal(servedEnd.exitCode, 128 + 15);
    // A server killed from outside is replaced by the next commands.
    process.kill(servers[0] as number, 'SIGKILL');
    for (let i = 0; i < 2; i++) assert.equal((await boxed(['cat', 'data.txt'], { sandbox: s })).stdout.toString(), 'visible\n');
    const next = await sleeping('7.9375');
    assert.match(next.parent, /python/, 'a new server');
    const [server] = serversOf(next.pid);
    assert.ok(server, 'a new server');
    process.kill(next.pid, 'SIGTERM');
    await next.ran;
    // The sandbox killed under it: the server ends by itself (its fd 0 is a pidfd of the sandbox's init).
    const holders = await holdersOf(conn);
    assert.ok(holders);
    await killHolders(holders);
    for (let i = 0; i < 100 && liveWithArg('--serve').includes(server); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(liveWithArg('--serve').includes(server), false);
  });

  test('a command whose sandbox is killed under it: 137, and it says why', { skip: mode !== 'holder' && 'long-lived sandboxes only' }, async () => {
    const s = { ...spec, owner: 'erin' };
    await boxed(['true'], { sandbox: s });
    const long = boxed(['sleep', '29.5'], { sandbox: s });
    // Killed once it runs in the sandbox (before, the command was not run: 125, a refusal).
    for (let i = 0; i < 500 && runningWithArg('29.5', 'sleep').length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    const holders = await holdersOf(conn);
    assert.ok(holders);
    await killHolders(holders);
    const r = await long;
    assert.deepEqual([r.result.exitCode, r.result.errorKind], [137, 'sandbox']);
    assert.equal(r.stderr.toString(), `remux: killed: its sandbox on ${conn.where} was stopped while it ran (from outside remux)\n`);
    // Its own SIGKILL, the sandbox running on: nothing more said.
    const self = await boxed(['sh', '-c', 'kill -9 $$'], { sandbox: s });
    assert.deepEqual([self.result.exitCode, self.result.errorKind, self.stderr.toString()], [137, null, '']);
  });

  test('a command that starts a sandbox finds it complete (bwrap reports its pid before it mounts)', async () => {
    // A connection of its own: 4 holders and 4 commands stay within sshd's 10 sessions.
    const c = await connect(h1);
    const owners = Array.from({ length: 4 }, (_, i) => `fresh-${i}`);
    const check = parseCommand('sh -c "test -x /usr/bin/env && test -r data.txt && echo ok"');
    const rs = await Promise.all(owners.map((owner) => sandboxRun(c, check, { cwd: box, sandbox: { ...spec, owner } })));
    assert.deepEqual(rs.map((r) => r.stdout.toString() + r.stderr.toString()), owners.map(() => 'ok\n'));
  });

  test('cost per command: unsandboxed, sandboxed (printed)', async (t) => {
    const N = 40;
    const p50 = async (f: () => Promise<Ran>): Promise<number> => {
      const times: number[] = [];
      await f();
      for (let i = 0; i < N; i++) {
        const started = performance.now();
        assert.equal((await f()).result.exitCode, 0);
        times.push(performance.now() - started);
      }
      times.sort((a, b) => a - b);
      return times[N >> 1] as number;
    };
    const plain = await p50(() => run(conn, ['true'], { cwd: box }));
    const boxedTime = await p50(() => boxed(['true']));
    t.diagnostic(`${mode}: p50 of ${N}x true: unsandboxed ${plain.toFixed(2)} ms, sandboxed ${boxedTime.toFixed(2)} ms (+${(boxedTime - plain).toFixed(2)} ms)`);
  });
});

describe('jump hosts and lost connections', () => {
  test('ProxyJump: the target is reached through the jump host, and both keys are checked', async () => {
    const jump = await connect(h2);
    const target = await connect(h3, { via: jump });
    assert.match(target.where, /^h3 \(.* via h2\)$/);
    assert.equal((await run(target, ['printenv', 'RMXF_HOST'])).stdout.toString(), 'h3\n');

    const onlyJump = knownHosts('only-jump', `${h2.hostKeyLine}\n`);
    const err = await refusal(h3, { via: jump, knownHostsFile: onlyJump });
    assert.match(err.message, /host key for h3 .* is not in/);
  });

  test('a target the jump host cannot reach fails within the connect timeout', async () => {
    const jump = await connect(h2);
    await h1.cut();
    try {
      const started = Date.now();
      const err = await refusal(h1, { via: jump, readyTimeoutMs: 800 });
      assert.equal(err.kind, 'timeout');
      assert.match(err.message, /^h1 \(.* via h2\): .*800 ms \(connect timeout\)$/);
      assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
    } finally {
      await h1.heal();
    }
  });

  test('sshd killed mid-command: a clean SshError naming the host, within 2 s', async () => {
    const conn = await connect(h3);
    const started = Date.now();
    const pending = run(conn, ['sleep', '5']).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 300));
    h3.kill();
    const err = await pending;
    assert.ok(err instanceof SshError, String(err));
    assert.equal(err.kind, 'dropped');
    assert.match(err.message, /^h3 \(.*\): connection lost/);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    assert.equal(conn.closed, true);
    await assert.rejects(run(conn, ['true']), /connection lost/);
    await h3.restart();
  });
});
