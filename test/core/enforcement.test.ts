// perform() decides how a command is enforced on its host before anything else: the OS sandbox where the
// host has one, static checks only where the policy and host allow it, else refused (fail closed) and
// audited. Hosts here differ only in what sandboxSupport() answers; the audit store is real.
import { ADMIN_SCOPE } from '../../src/config/principals.js';
import assert from 'node:assert/strict';
import { posix } from 'node:path';
import { test, type TestContext } from 'node:test';
import { AuditStore } from '../../src/audit/index.js';
import { perform, type PerformContext } from '../../src/core/perform.js';
import type { ExecResult, SandboxSupport } from '../../src/exec/types.js';
import type { Host, HostExecRequest } from '../../src/hosts/types.js';
import { parsePolicies } from '../../src/policy/load.js';
import type { PathResolver } from '../../src/policy/types.js';
import { tempDbPath } from '../audit/helpers.js';

const POLICIES = parsePolicies(
  `policies:
  default_on:
    capabilities: &caps
      - { operation: execute_binary, resource: "cat|grep" }
      - { operation: read_file, resource: /data/** }
      - { operation: list_directory, resource: /data/** }
      - { operation: write_stdout, resource: null }
  required:
    sandbox: required
    capabilities: *caps
  off:
    sandbox: false
    capabilities: *caps
  code_on:
    capabilities: &code
      - { operation: execute_binary, resource: "make|cat|ls" }
      - { operation: execute_code, resource: make }
      - { operation: read_file, resource: /data/** }
      - { operation: list_directory, resource: /data/** }
      - { operation: write_stdout, resource: null }
  code_off:
    sandbox: false
    capabilities: *code
  code_unsandboxed:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: "make|cat" }
      - { operation: execute_code, resource: make, unsandboxed: true }
      - { operation: read_file, resource: /data/** }
      - { operation: list_directory, resource: /data/** }
      - { operation: write_stdout, resource: null }
`,
  'enforcement.yaml',
  {},
);

const RESOLVER: PathResolver = { realpath: (p, cwd) => posix.resolve(cwd, p), which: (name) => `/usr/bin/${name}` };
const OK: ExecResult = { exitCode: 0, signal: null, timedOut: false, aborted: false, truncated: false, bytesOut: 0, bytesErr: 0, durationMs: 1, error: null, errorKind: null };
const WITH_BWRAP: SandboxSupport = { available: true, detail: 'bubblewrap 0.12.0', staticFallback: true };
const REMOTE_WITHOUT: SandboxSupport = { available: false, detail: 'no bwrap in PATH /usr/bin:/bin', staticFallback: true };
const LOCAL_WITHOUT: SandboxSupport = { available: false, detail: 'bwrap not found (looked for /usr/bin/bwrap)', staticFallback: false };

function setup(t: TestContext, support: SandboxSupport | Error) {
  const audit = AuditStore.open(tempDbPath(t));
  t.after(() => audit.close());
  const ran: HostExecRequest[] = [];
  const host: Host = {
    name: 'h1',
    resolver: RESOLVER,
    defaultCwd: () => '/data',
    openTerminal: () => Promise.reject(new Error('no terminals on this test host')),
    sandboxSupport: () => (support instanceof Error ? Promise.reject(support) : Promise.resolve(support)),
    execute: (req) => {
      ran.push(req);
      return Promise.resolve(OK);
    },
  };
  const ctx: PerformContext = {
    principal: { name: 'alice', via: 'cli', scope: ADMIN_SCOPE },
    policies: POLICIES,
    defaultPolicy: 'default_on',
    defaultTimeoutMs: null,
    defaultPipefail: false,
    audit,
    host: () => host,
    hostEntry: (name) => ({ name, transport: 'local', labels: {}, builtin: false }),
  };
  const io = { onStdout: () => {}, onStderr: () => {} };
  const run = (command: string, policy: string) => perform(ctx, { kind: 'exec', host: 'h1', command, policy }, io);
  return { run, ran, audit };
}

test('a host with a sandbox: the command runs in it, with the policy spec and the principal as owner', async (t) => {
  const { run, ran } = setup(t, WITH_BWRAP);
  const r = await run('grep -R x /data', 'default_on');
  assert.equal(r.exitCode, 0);
  assert.equal(r.decision?.sandbox, true);
  assert.deepEqual(ran[0]?.sandbox, { read: ['/data'], write: [], hide: [], hideMatching: [], readOnly: [], network: false, owner: 'alice' });
});

test('sandbox on, an SSH host without one: static checks only, and what only the sandbox can confine is refused', async (t) => {
  const { run, ran, audit } = setup(t, REMOTE_WITHOUT);
  const plain = await run('cat /data/a', 'default_on');
  assert.equal(plain.exitCode, 0);
  assert.equal(ran[0]?.sandbox, null);
  const followed = await run('grep -R x /data', 'default_on');
  assert.equal(followed.exitCode, 77);
  assert.match(followed.message ?? '', /only the OS sandbox can confine; this command would run with static checks only \(host h1 has no OS sandbox: no bwrap in PATH/);
  assert.equal(ran.length, 1, 'the refused command did not run');
  assert.equal(audit.list().at(-1)?.begin.decision, 'deny');
});

test('sandbox required: a host without one is refused before anything runs, audited', async (t) => {
  const { run, ran, audit } = setup(t, REMOTE_WITHOUT);
  const r = await run('cat /data/a', 'required');
  assert.equal(r.exitCode, 77);
  assert.equal(r.message, 'policy required requires the OS sandbox (sandbox: required), but h1 cannot provide one: no bwrap in PATH /usr/bin:/bin');
  assert.equal(ran.length, 0);
  const last = audit.list().at(-1);
  assert.deepEqual([last?.begin.decision, last?.end?.exitCode], ['deny', 77]);
});

test('the local host without bubblewrap: sandbox on fails closed with what to do; sandbox false runs', async (t) => {
  const { run, ran } = setup(t, LOCAL_WITHOUT);
  const r = await run('cat /data/a', 'default_on');
  assert.equal(r.exitCode, 77);
  assert.match(r.message ?? '', /^policy default_on runs commands in the OS sandbox, but h1 cannot provide one: bwrap not found .*; install bubblewrap \(apt-get install bubblewrap\), or set sandbox: false/);
  assert.equal(ran.length, 0);
  const off = await run('grep -R x /data', 'off');
  assert.equal(off.exitCode, 77, 'static checks only: the recursion that follows links is refused');
  assert.match(off.message ?? '', /policy off has sandbox: false/);
  assert.equal((await run('cat /data/a', 'off')).exitCode, 0);
  assert.equal(ran[0]?.sandbox, null);
});

test('a host that cannot be asked is unreachable (255), not run unsandboxed', async (t) => {
  const { run, ran } = setup(t, new Error('h1: connection refused'));
  const r = await run('cat /data/a', 'default_on');
  assert.deepEqual([r.exitCode, r.outcome, r.message], [255, 'unreachable', 'h1: connection refused']);
  assert.equal(ran.length, 0);
});

test('code remux cannot check runs only in the sandbox: on a host with one, sandboxed', async (t) => {
  const { run, ran } = setup(t, WITH_BWRAP);
  const r = await run('make -C /data', 'code_on');
  assert.equal(r.exitCode, 0, r.message ?? '');
  assert.equal(r.decision?.sandbox, true);
  assert.deepEqual(r.decision?.bounds, [{ stage: 0, layer: 'sandbox', code: "make runs a Makefile's recipes, code that remux cannot check" }]);
  assert.notEqual(ran[0]?.sandbox, null);
});

test('code remux cannot check on a host without a sandbox: refused, audited, never run; unless the rule says unsandboxed: true', async (t) => {
  const { run, ran, audit } = setup(t, REMOTE_WITHOUT);
  const remote = await run('make -C /data', 'code_on');
  assert.equal(remote.exitCode, 77);
  assert.match(remote.message ?? '', /^execute_code \/usr\/bin\/make: make runs a Makefile's recipes, code that remux cannot check; allowed by code_on#1 \(enforcement\.yaml:\d+\) only inside the OS sandbox, but this command would run with static checks only \(host h1 has no OS sandbox: no bwrap in PATH/);
  assert.equal(audit.list().at(-1)?.begin.decision, 'deny');
  const off = await run('make -C /data', 'code_off');
  assert.equal(off.exitCode, 77);
  assert.match(off.message ?? '', /static checks only \(policy code_off has sandbox: false\); add unsandboxed: true to that rule/);
  assert.equal(ran.length, 0, 'nothing ran');
  // Plain programs under the same policy still run with static checks only.
  assert.equal((await run('cat /data/a', 'code_on')).exitCode, 0);
  const unsandboxed = await run('make -C /data', 'code_unsandboxed');
  assert.equal(unsandboxed.exitCode, 0, unsandboxed.message ?? '');
  assert.equal(ran.at(-1)?.sandbox, null);
  assert.deepEqual(unsandboxed.decision?.bounds.map((b) => b.layer), ['none']);
});

test('the local host without bubblewrap: execute_code fails closed like every sandboxed command', async (t) => {
  const { run, ran } = setup(t, LOCAL_WITHOUT);
  assert.equal((await run('make -C /data', 'code_on')).exitCode, 77);
  assert.equal((await run('make -C /data', 'code_off')).exitCode, 77);
  assert.equal((await run('make -C /data', 'code_unsandboxed')).exitCode, 0);
  assert.equal(ran.length, 1);
});

test('cd DIR && …: the host runs the rest of the list in DIR (cwd), never the cd', async (t) => {
  const { run, ran } = setup(t, WITH_BWRAP);
  const r = await run('cd /data/sub; cd .. && cat a | cat', 'default_on');
  assert.equal(r.exitCode, 0, r.message ?? '');
  assert.equal(ran[0]?.cwd, '/data');
  assert.deepEqual(
    ran[0]?.list.items.map((i) => [i.op, i.pipeline.stages.map((s) => s.argv)]),
    [[null, [['cat', 'a'], ['cat']]]],
  );
  const outside = await run('cd /etc && cat passwd', 'default_on');
  assert.equal(outside.exitCode, 77);
  assert.match(outside.message ?? '', /^list_directory \/etc: no rule of policy default_on allows it/);
  assert.equal(ran.length, 1);
});
