// `remux code hook` as Claude Code runs it: the built CLI, hook JSON on stdin (shaped as the hooks
// reference documents, FIELD-NOTES §11), the approval answered from the test through the store the
// CLI shares, the printed decision checked field by field. Expiry prints nothing; a policy deny
// denies with the rule's reason; bad input exits 1 (never 2, which Claude Code reads as "deny").
// Runs `remux code hook` as Claude Code does: the hook's JSON on stdin, its decision on stdout.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { claudeHookSettings, describeToolCall } from '../../src/agents/hooks.js';
import { ApprovalStore, type Approval } from '../../src/notify/approvals.js';
import { AuditStore } from '../../src/audit/store.js';
import { httpRecorder } from '../support/http-recorder.js';
import { spawn as ptySpawn } from 'node-pty';
import { REMUX_BIN, REMUX_NODE_BIN, remux, spawnRemux, tempHome } from '../support/cli.js';

const POLICY = `policies:
  agent:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: [ls, touch] }
      - { operation: list_directory, resource: /** }
      - { operation: write_file, resource: /tmp/** }
      - { operation: write_stdout, resource: null }
      - { operation: execute_binary, effect: ask, resource: touch, reason: touching needs a person }
      - { operation: execute_binary, effect: deny, resource: rm, reason: agents never delete files }
`;

const COMMON = { session_id: 'c0ffee', transcript_path: '/home/dev/.claude/projects/x/c0ffee.jsonl', cwd: '/tmp', permission_mode: 'default' };
const PERMISSION_BASH = { ...COMMON, hook_event_name: 'PermissionRequest', tool_name: 'Bash', tool_input: { command: 'npm publish --access public', description: 'Publish the package' } };
const PERMISSION_EDIT = { ...COMMON, hook_event_name: 'PermissionRequest', tool_name: 'Edit', tool_input: { file_path: '/home/dev/app/src/app.ts', old_string: 'a', new_string: 'b' } };
const pre = (command: string): object => ({ ...COMMON, hook_event_name: 'PreToolUse', tool_name: 'Bash', tool_input: { command }, tool_use_id: 'toolu_01' });

describe('remux code hook', () => {
  const h = tempHome();
  const hook = httpRecorder();
  let store: ApprovalStore;

  before(async () => {
    await hook.listen();
    writeFileSync(join(h.home, 'policies.yaml'), POLICY);
    writeFileSync(join(h.home, 'config.yaml'), `default_policy: agent\napprovals:\n  timeout_seconds: 20\nnotify:\n  channels:\n    - { type: webhook, url: "${hook.base()}/hook", allow_internal: true }\n`);
    store = ApprovalStore.open(join(h.home, 'approvals.db'), join(h.home, 'approvals.key'));
  });
  after(async () => {
    store.close();
    await hook.close();
    h.remove();
  });

  const run = (input: object | string, env: Record<string, string> = {}): ReturnType<typeof remux> =>
    remux(['code', 'hook', '--session', 'myapp-1'], { env: { ...h.env, ...env }, input: typeof input === 'string' ? input : JSON.stringify(input), via: 'node', timeoutMs: 30_000 });

  /** The approval the running hook created, once it is there. */
  async function pending(what: RegExp): Promise<Approval> {
    for (let i = 0; i < 200; i++) {
      const found = store.list().find((a) => what.test(a.what));
      if (found) return found;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no pending approval matching ${what}`);
  }

  test('PermissionRequest approved: behavior allow', async () => {
    const running = run(PERMISSION_BASH);
    const a = await pending(/npm publish/);
    assert.equal(a.what, 'Bash: npm publish --access public');
    assert.equal(a.principal, 'agent:myapp-1');
    // A session the store does not know (run by hand): named by its ID. Its source stays the watcher's key.
    assert.deepEqual([a.source, a.from], ['agent:claude', 'Claude Code in agent session myapp-1']);
    assert.deepEqual(a.options.map((o) => o.effect), ['allow', 'deny']);
    store.answer(a.id, 'approve', { by: 'alice', via: 'test' });
    const r = await running;
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { hookSpecificOutput: { hookEventName: string; decision: Record<string, unknown> } };
    assert.deepEqual(Object.keys(out), ['hookSpecificOutput']);
    assert.equal(out.hookSpecificOutput.hookEventName, 'PermissionRequest');
    assert.deepEqual(out.hookSpecificOutput.decision, { behavior: 'allow' });
    assert.ok(hook.requests.some((q) => q.body.includes('npm publish')), 'the approval was announced on the channel');
  });

  test('while its approval waits, stderr says which one and how to answer it (the decision alone goes to stdout)', async () => {
    const child = spawnRemux(['code', 'hook', '--session', 'myapp-1'], { env: h.env, via: 'node' });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.stdin?.end(JSON.stringify({ ...PERMISSION_BASH, tool_input: { command: 'npm whoami' } }));
    const a = await pending(/npm whoami/);
    for (let i = 0; i < 200 && !stderr.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(stderr, `remux code hook: waiting up to 20 s for approval ${a.id}: answer with remux approvals approve ${a.id} (or deny) or in the web console; unanswered, it prints nothing\n`);
    store.answer(a.id, 'approve', { by: 'alice', via: 'test' });
    assert.equal(await exited, 0, stderr);
    assert.deepEqual(JSON.parse(stdout), { hookSpecificOutput: { hookEventName: 'PermissionRequest', decision: { behavior: 'allow' } } });
  });

  test('run by hand in a terminal without a pipe, it says what it reads at once instead of waiting; its --help example answers at once, as written', async () => {
    const term = ptySpawn(process.execPath, [REMUX_NODE_BIN, 'code', 'hook', '--session', 's'], { env: { ...process.env, ...h.env } as Record<string, string> });
    let screen = '';
    term.onData((d) => (screen += d));
    const code = await new Promise<number>((resolve) => {
      const killer = setTimeout(() => term.kill('SIGKILL'), 20_000);
      term.onExit((e) => {
        clearTimeout(killer);
        resolve(e.exitCode);
      });
    });
    assert.equal(code, 1, screen);
    assert.match(screen, /remux code hook: it reads a hook's input \(JSON\) on stdin, as Claude Code pipes it, and stdin is a terminal: pipe one in/);
    // The first example of --help, typed into a shell: the policy's verdict, no wait.
    const help = await remux(['code', 'hook', '--help'], { env: h.env, via: 'node' });
    const example = help.stdout.split('\n').find((l) => l.includes('PreToolUse') && l.includes('| remux code hook'));
    assert.ok(example, help.stdout);
    const started = performance.now();
    const ran = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const sh = spawn('sh', ['-c', example], { env: { ...process.env, ...h.env, PATH: `${dirname(REMUX_BIN)}:${process.env.PATH}` } });
      let stdout = '';
      let stderr = '';
      sh.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      sh.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      sh.once('close', (code) => resolve({ code, stdout, stderr }));
    });
    assert.ok(performance.now() - started < 15_000);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal((JSON.parse(ran.stdout) as { hookSpecificOutput: { permissionDecision: string } }).hookSpecificOutput.permissionDecision, 'deny');
  });

  test('PermissionRequest denied: behavior deny with a message naming who', async () => {
    const running = run(PERMISSION_EDIT);
    const a = await pending(/app\.ts/);
    assert.equal(a.what, 'Edit: /home/dev/app/src/app.ts');
    store.answer(a.id, 'deny', { by: 'bob', via: 'test' });
    const r = await running;
    assert.equal(r.code, 0, r.stderr);
    const d = (JSON.parse(r.stdout) as { hookSpecificOutput: { hookEventName: string; decision: { behavior: string; message: string } } }).hookSpecificOutput;
    assert.equal(d.hookEventName, 'PermissionRequest');
    assert.equal(d.decision.behavior, 'deny');
    assert.match(d.decision.message, /denied by bob/);
  });

  test('unanswered: PermissionRequest prints nothing, exit 0, and one message replacing the question says the prompt waits at the terminal; PreToolUse says ask (the terminal dialog stays either way)', async () => {
    // ntfy, which replaces a question, and a webhook, which cannot; no console to link to: a question still gets replaced.
    writeFileSync(
      join(h.home, 'config.yaml'),
      `default_policy: agent\napprovals:\n  timeout_seconds: 1\nnotify:\n  channels:\n    - { type: webhook, url: "${hook.base()}/hook", allow_internal: true }\n    - { type: ntfy, url: "${hook.base()}", topic: t, allow_internal: true }\n`,
    );
    /** What ntfy was sent mentioning `text`: title and sequence ID, in order. */
    const ntfy = (text: string): Array<[string, string | undefined]> =>
      hook.requests.filter((q) => q.path === '/' && q.body.includes(text)).map((q) => JSON.parse(q.body) as { title: string; sequence_id?: string }).map((m) => [m.title, m.sequence_id]);
    const webhook = (text: string): string[] => hook.requests.filter((q) => q.path === '/hook' && q.body.includes(text)).map((q) => (JSON.parse(q.body) as { event: string }).event);
    try {
      const r = await run({ ...PERMISSION_BASH, tool_input: { command: 'make release' } });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
      const release = store.list({ all: true }).find((a) => a.what.includes('make release'));
      assert.equal(release?.status, 'expired');
      // One message after the question: the one replacing it (the hook says nothing of its own).
      assert.deepEqual(ntfy('make release'), [['Approval needed on localhost', release?.id], ['Approval expired on localhost', release?.id]]);
      const replaced = hook.requests.filter((q) => q.path === '/' && q.body.includes('make release')).at(-1)!;
      assert.match((JSON.parse(replaced.body) as { message: string }).message, /No answer within 1 s: the prompt waits at the terminal\.$/);
      assert.deepEqual(webhook('make release'), ['approval.requested'], 'a webhook cannot replace a message: nothing more');
      // A policy ask nobody answered: "ask", Claude Code's own dialog — never an allow.
      const p = await run(pre('touch /tmp/remux-hook-expired'));
      assert.equal(p.code, 0, p.stderr);
      const o = (JSON.parse(p.stdout) as { hookSpecificOutput: Record<string, string> }).hookSpecificOutput;
      assert.equal(o.permissionDecision, 'ask');
      assert.match(o.permissionDecisionReason!, /none came within 1 s/);
      const touch = store.list({ all: true }).find((a) => a.what.includes('remux-hook-expired'));
      assert.deepEqual(ntfy('remux-hook-expired'), [['Approval needed on localhost', touch?.id], ['Approval expired on localhost', touch?.id]]);
      // Claude Code then shows its dialog, whose PermissionRequest would ask the same again: it does not,
      // prints nothing and sends nothing (the replacement said the prompt waits at the terminal).
      const asked = store.list({ all: true }).length;
      const dialog = await run({ ...PERMISSION_BASH, tool_input: { command: 'touch /tmp/remux-hook-expired', description: 'Touch a file' } });
      assert.equal(dialog.code, 0, dialog.stderr);
      assert.equal(dialog.stdout, '');
      assert.equal(store.list({ all: true }).length, asked, 'no second approval for the same call');
      assert.equal(ntfy('remux-hook-expired').length, 2, 'no message of its own');
      assert.deepEqual(webhook('remux-hook-expired'), ['approval.requested']);
      // The same with a secret in the command: the approval keeps it redacted, and is still known as this call's.
      const secret = 'touch /tmp/remux-hook-expired password=hunter2';
      await run(pre(secret));
      assert.equal(store.list({ all: true }).filter((a) => a.what.includes('password=[REDACTED]')).length, 1);
      const secretDialog = await run({ ...PERMISSION_BASH, tool_input: { command: secret } });
      assert.equal(secretDialog.stdout, '');
      assert.equal(store.list({ all: true }).length, asked + 1, 'no second approval for that call either');
      assert.equal(JSON.stringify(store.list({ all: true })).includes('hunter2'), false);
      // Another command still asks (and expires here).
      await run({ ...PERMISSION_BASH, tool_input: { command: 'make other' } });
      assert.equal(store.list({ all: true }).length, asked + 2);
    } finally {
      writeFileSync(join(h.home, 'config.yaml'), 'default_policy: agent\napprovals:\n  timeout_seconds: 20\n');
    }
  });

  test('PreToolUse: a deny rule denies with its reason, without asking anyone', async () => {
    const before = store.list({ all: true }).length;
    const r = await run(pre('rm -rf node_modules'));
    assert.equal(r.code, 0, r.stderr);
    const o = (JSON.parse(r.stdout) as { hookSpecificOutput: Record<string, string> }).hookSpecificOutput;
    assert.equal(o.hookEventName, 'PreToolUse');
    assert.equal(o.permissionDecision, 'deny');
    assert.match(o.permissionDecisionReason!, /agents never delete files/);
    assert.equal(store.list({ all: true }).length, before, 'no approval for a denial');
    const audit = AuditStore.open(join(h.home, 'audit.db'));
    try {
      const rows = audit.list({}).map((e) => e.begin).filter((b) => b.operation === 'agent.bash');
      assert.ok(rows.some((e) => e.command === 'rm -rf node_modules' && e.decision === 'deny' && e.principal === 'agent:myapp-1'), JSON.stringify(rows));
    } finally {
      audit.close();
    }
  });

  test('PreToolUse: injection through the command is judged as a whole (ls; rm is denied)', async () => {
    const r = await run(pre('ls /tmp; rm -rf ~'));
    const o = (JSON.parse(r.stdout) as { hookSpecificOutput: Record<string, string> }).hookSpecificOutput;
    assert.equal(o.permissionDecision, 'deny');
  });

  test('PreToolUse: allowed prints nothing (Claude Code\'s own rules still apply)', async () => {
    const r = await run(pre('ls /tmp'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
  });

  test('PreToolUse: ask becomes an approval; approved → allow', async () => {
    const running = run(pre('touch /tmp/remux-hook-test'));
    const a = await pending(/touch/);
    assert.equal(a.reason.includes('touching needs a person'), true, a.reason);
    assert.equal(a.source, 'policy:agent');
    assert.equal(a.from, "policy agent on Claude Code's Bash in agent session myapp-1");
    store.answer(a.id, 'approve', { by: 'carol', via: 'test' });
    const o = (JSON.parse((await running).stdout) as { hookSpecificOutput: Record<string, string> }).hookSpecificOutput;
    assert.equal(o.hookEventName, 'PreToolUse');
    assert.equal(o.permissionDecision, 'allow');
    assert.match(o.permissionDecisionReason!, /approved by carol/);
  });

  test('Notification: sent on the channels, nothing printed', async () => {
    writeFileSync(join(h.home, 'config.yaml'), `default_policy: agent\nnotify:\n  channels:\n    - { type: webhook, url: "${hook.base()}/hook", allow_internal: true }\n`);
    const r = await run({ ...COMMON, hook_event_name: 'Notification', message: 'Claude is waiting for your input', notification_type: 'idle_prompt' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    const sent = hook.requests.find((q) => q.body.includes('Claude is waiting for your input'));
    assert.ok(sent, 'delivered');
    assert.match(sent.body, /idle prompt/);
  });

  test('bad input: exit 1 (not 2, which would deny), the problem named, nothing on stdout', async () => {
    for (const [input, problem] of [
      ['{not json', /not JSON/],
      [{ ...COMMON, hook_event_name: 'Stop' }, /hook_event_name must be one of/],
      [{ ...COMMON, hook_event_name: 'PermissionRequest', tool_input: {} }, /needs tool_name/],
    ] as const) {
      const r = await run(input);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, problem);
    }
  });
});

test('claudeHookSettings: every hook runs `code hook` for the session, quoted, outlasting the approval deadline; PreToolUse only with a policy', () => {
  const s = claudeHookSettings(['/usr/bin/node', '/opt/my remux/bin/remux.js'], 'myapp-1', 300);
  assert.deepEqual(Object.keys(s.hooks).sort(), ['Notification', 'PermissionRequest', 'PreToolUse']);
  const cmd = s.hooks.PermissionRequest?.[0]?.hooks[0];
  assert.equal(cmd?.command, "/usr/bin/node '/opt/my remux/bin/remux.js' code hook --session myapp-1");
  assert.equal(cmd?.type, 'command');
  assert.ok((cmd?.timeout ?? 0) > 300);
  assert.equal(s.hooks.PreToolUse?.[0]?.matcher, 'Bash');
  assert.equal(claudeHookSettings(['remux'], "x'; rm -rf ~ #").hooks.Notification?.[0]?.hooks[0]?.command, "remux code hook --session 'x'\\''; rm -rf ~ #'");
  assert.deepEqual(Object.keys(claudeHookSettings(['remux'], 's', 300, false).hooks).sort(), ['Notification', 'PermissionRequest']);
});

test('describeToolCall: one short line', () => {
  assert.equal(describeToolCall('Bash', { command: 'echo a\necho b' }), 'Bash: echo a ⏎ echo b');
  assert.equal(describeToolCall('WebFetch', { url: 'https://example.com', prompt: 'x' }), 'WebFetch: https://example.com');
  assert.equal(describeToolCall('Bash', { command: 'x'.repeat(500) }).length, 200);
  // The line is an approval's question, sent to phones: no secrets, as in the audit trail.
  assert.equal(describeToolCall('Bash', { command: 'curl -H "Authorization: Bearer abc123" https://x' }), 'Bash: curl -H "Authorization: Bearer [REDACTED]" https://x');
});

// A new user's first agent session needs no policies file (`remux code start` works without one): nor
// do the commands that answer its questions.
describe('without a policies file (an empty REMUX_HOME)', () => {
  const h = tempHome();
  after(() => h.remove());
  const cli = (args: string[], input?: string): ReturnType<typeof remux> => remux(args, { env: h.env, via: 'node', timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) });

  test('code hook asks and answers, approvals ls and approve work; a PreToolUse check is denied, naming the missing file', async () => {
    const listed = await cli(['approvals', 'ls']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /no open approvals/);
    const note = await cli(['code', 'hook', '--session', 'first'], JSON.stringify({ ...COMMON, hook_event_name: 'Notification', message: 'Claude is waiting for your input' }));
    assert.equal(note.code, 0, note.stderr);
    const asking = cli(['code', 'hook', '--session', 'first'], JSON.stringify(PERMISSION_BASH));
    let open: Array<{ id: string; what: string }> = [];
    for (let i = 0; i < 200 && open.length === 0; i++) {
      const r = await cli(['approvals', 'ls', '--json']);
      assert.equal(r.code, 0, r.stderr);
      open = JSON.parse(r.stdout) as typeof open;
      if (open.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(open[0]?.what, 'Bash: npm publish --access public');
    const approved = await cli(['approvals', 'approve', open[0].id]);
    assert.equal(approved.code, 0, approved.stderr);
    const answered = await asking;
    assert.equal(answered.code, 0, answered.stderr);
    assert.deepEqual((JSON.parse(answered.stdout) as { hookSpecificOutput: { decision: unknown } }).hookSpecificOutput.decision, { behavior: 'allow' });
    // No policy to check a Bash command with: never an allow on remux's word.
    const checked = await cli(['code', 'hook', '--session', 'first'], JSON.stringify(pre('ls /tmp')));
    assert.equal(checked.code, 0, checked.stderr);
    const o = (JSON.parse(checked.stdout) as { hookSpecificOutput: Record<string, string> }).hookSpecificOutput;
    assert.equal(o.permissionDecision, 'deny');
    assert.match(o.permissionDecisionReason!, new RegExp(`no policies file at ${join(h.home, 'policies.yaml')}`));
  });
});

describe('an interrupted remux code hook withdraws its approval (a real daemon serves the approvals)', { timeout: 120_000 }, () => {
  const h = tempHome();
  const hook = httpRecorder();
  type Listed = { id: string; principal: string; status: string; why: string | null; what: string };
  const approvals = async (...args: string[]): Promise<Listed[]> => {
    const r = await remux(['approvals', 'ls', '--json', ...args], { env: h.env, via: 'node' });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Listed[];
  };

  before(async () => {
    await hook.listen();
    writeFileSync(join(h.home, 'policies.yaml'), POLICY);
    writeFileSync(join(h.home, 'config.yaml'), `default_policy: agent\napprovals:\n  timeout_seconds: 120\n  orphan_sweep_seconds: 1\nnotify:\n  channels:\n    - { type: ntfy, url: "${hook.base()}", topic: t, allow_internal: true }\n`);
    const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: h.env });
    await hook.close();
    h.remove();
  });

  for (const [signal, status, input, what] of [
    ['SIGINT', 130, { ...PERMISSION_BASH, tool_input: { command: 'npm unpublish' } }, 'Bash: npm unpublish'],
    ['SIGTERM', 143, pre('touch /tmp/interrupted'), 'Bash: touch /tmp/interrupted'],
    ['SIGHUP', 129, { ...PERMISSION_BASH, tool_input: { command: 'npm deprecate' } }, 'Bash: npm deprecate'],
  ] as const) {
    test(`${signal} while it waits: the approval ends withdrawn, saying why, audited and replaced on the channel; the hook exits ${status} with no decision`, async () => {
      const child = spawnRemux(['code', 'hook', '--session', 'myapp-2'], { env: h.env, via: 'node' });
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.stdin?.end(JSON.stringify(input));
      let asked: Listed | undefined;
      for (let i = 0; i < 300 && !asked; i++, await new Promise((r) => setTimeout(r, 50))) asked = (await approvals()).find((a) => a.what === what);
      assert.ok(asked, `pending: ${stderr}`);
      child.kill(signal);
      assert.equal(await exited, status, stderr);
      assert.equal(stdout, '', 'no decision: Claude Code gave up on the hook');
      assert.match(stderr, new RegExp(`interrupted by ${signal}: its approval is withdrawn`));

      assert.equal((await approvals()).find((a) => a.id === asked.id), undefined, 'no longer pending');
      const ended = (await approvals('--all')).find((a) => a.id === asked.id);
      assert.equal(ended?.status, 'cancelled');
      assert.match(ended?.why ?? '', new RegExp(`^its hook \\(remux code hook, pid ${child.pid}\\) was interrupted by ${signal} before an answer came$`));
      const audit = (await remux(['audit', 'ls', '--json'], { env: h.env, via: 'node' })).stdout.trim().split('\n').map((l) => JSON.parse(l) as { operation: string; principal: string; resource: string | null; reason: string | null });
      const withdrawn = audit.find((a) => a.operation === 'approval.withdraw' && a.resource === asked.id);
      assert.equal(withdrawn?.principal, 'agent:myapp-2');
      assert.match(withdrawn?.reason ?? '', new RegExp(`interrupted by ${signal}`));
      // The phone's question is replaced by one saying it was withdrawn, and why.
      const replaced = hook.requests.find((q) => q.body.includes(`Withdrawn: its hook (remux code hook, pid ${child.pid}) was interrupted by ${signal}`));
      assert.ok(replaced, JSON.stringify(hook.requests.map((q) => q.body)));
    });
  }

  test('SIGKILL while it waits: the daemon withdraws the question of the hook it outlived, saying so', async () => {
    const child = spawnRemux(['code', 'hook', '--session', 'myapp-3'], { env: h.env, via: 'node' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    child.stdin?.end(JSON.stringify({ ...PERMISSION_BASH, tool_input: { command: 'npm owner rm' } }));
    let asked: Listed | undefined;
    for (let i = 0; i < 300 && !asked; i++, await new Promise((r) => setTimeout(r, 50))) asked = (await approvals()).find((a) => a.what === 'Bash: npm owner rm');
    assert.ok(asked);
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    // Within approvals.orphan_sweep_seconds (1 here).
    let ended: Listed | undefined;
    for (let i = 0; i < 200 && ended?.status !== 'cancelled'; i++, await new Promise((r) => setTimeout(r, 50))) ended = (await approvals('--all')).find((a) => a.id === asked.id);
    assert.equal(ended?.status, 'cancelled');
    assert.match(ended?.why ?? '', new RegExp(`^remux \\(pid ${child.pid}\\) that asked stopped \\(crash between .+ UTC\\)`));
  });
});
