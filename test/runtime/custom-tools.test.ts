// Custom tools (src/runtime/custom.ts) on a real local python3: a tool defined in TypeScript with its
// Python as a string or a file, called like a built-in; its value checked by its zod result type (a
// wrong shape is a ResultTypeError), its arguments by theirs (refused before anything is sent); every
// declared operation, and running the interpreter (execute_code python3, unsandboxed), checked by the policy and audited; its code sent on
// first use per connection and again only when it changed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { ArgumentTypeError, CallTimeoutError, connect, defineMethod, defineTool, DeniedError, RemoteError, ResultTypeError } from '../../src/runtime/index.js';
import { runtimeContext, tempRoot } from '../support/runtime.js';

function setup(t: TestContext, code = '      - { operation: execute_code, resource: python3, unsandboxed: true }\n') {
  const root = tempRoot(t, 'remux-rt-custom-');
  writeFileSync(join(root, 'data.txt'), 'one\ntwo\nthree\n');
  const { context, audit } = runtimeContext(
    t,
    `policies:
  rt:
    sandbox: false
    capabilities:
      - { operation: read_file, resource: "${root}/secret*", effect: deny, reason: not this one }
      - { operation: read_file, resource: "${root}/**" }
      - { operation: execute_binary, resource: "python3|uname|sleep" }
      - { operation: write_file, resource: "${root}/beats" }
      - { operation: write_stdout }
${code}`,
    'rt',
  );
  return { root, audit, context };
}

/** A tool counting its loads in `marker` (its module's top level runs once per time its code is sent). */
function lineTool(marker: string, version: string) {
  return defineTool({
    name: 'Lines',
    python: `open(${JSON.stringify(marker)}, 'a').write('${version}\\n')
def count(path):
    with open(path) as f:
        return {'lines': len(f.read().splitlines()), 'version': '${version}'}
def wrong(path):
    return {'lines': 'many'}
`,
    methods: {
      count: defineMethod({ args: z.tuple([z.string()]), result: z.object({ lines: z.number().int(), version: z.string() }), operations: (path) => [{ kind: 'file.read', path }] }),
      wrong: defineMethod({ args: z.tuple([z.string()]), result: z.object({ lines: z.number() }), operations: (path) => [{ kind: 'file.read', path }] }),
    },
  });
}

const loads = (marker: string): string[] => (existsSync(marker) ? readFileSync(marker, 'utf8').trim().split('\n') : []);

test('a custom tool is called like a built-in: typed value, audited as its method with its operations', async (t) => {
  const { root, audit, context } = setup(t);
  const Lines = lineTool(join(root, 'loads'), 'v1');
  const host = await connect('localhost', { context });
  t.after(() => host.close());
  const r = await host.call(Lines.count, join(root, 'data.txt'));
  assert.deepEqual(r, { lines: 3, version: 'v1' });
  const record = audit.list().find((a) => a.begin.command === 'Lines.count');
  // As a built-in's record: each operation, on what it was checked on (the path and program resolved on the host).
  assert.equal(record?.begin.operation, 'read_file,execute_binary');
  assert.equal(record?.begin.resource, `${root}/data.txt ${realpathSync('/usr/bin/python3')}`);
  assert.equal(record?.begin.decision, 'allow');
  assert.equal(record?.end?.exitCode, 0);
});

test('a method its Python lacks is named by the tool and what is missing', async (t) => {
  const { root, context } = setup(t);
  const Half = defineTool({
    name: 'Half',
    python: 'def here(path):\n    return path\n',
    methods: {
      here: defineMethod({ args: z.tuple([z.string()]), result: z.string(), operations: (path) => [{ kind: 'file.read', path }] }),
      gone: defineMethod({ args: z.tuple([z.string()]), result: z.string(), operations: (path) => [{ kind: 'file.read', path }] }),
    },
  });
  const host = await connect('localhost', { context });
  t.after(() => host.close());
  // Sent with its first call, then known by its hash: the second call still names the tool.
  assert.equal(await host.call(Half.here, join(root, 'data.txt')), join(root, 'data.txt'));
  await assert.rejects(host.call(Half.gone, join(root, 'data.txt')), (e: Error) => e instanceof RemoteError && e.message === "ProtocolError: no method 'gone' in tool Half: its Python has no top-level function of that name");
});

test('its Python from a file; a value of the wrong shape is a ResultTypeError naming the field', async (t) => {
  const { root, audit, context } = setup(t);
  const file = join(root, 'uname_tool.py');
  writeFileSync(file, "import subprocess\ndef kernel():\n    p = rt.spawn(['uname', '-s'], stdout=subprocess.PIPE)\n    return p.communicate()[0].decode().strip()\n");
  const Uname = defineTool({ name: 'Uname', python: { file }, methods: { kernel: defineMethod({ args: z.tuple([]), result: z.string(), operations: () => [{ kind: 'exec', argv: ['uname', '-s'] }] }) } });
  const host = await connect('localhost', { context });
  t.after(() => host.close());
  assert.equal(await host.call(Uname.kernel), 'Linux');
  const Lines = lineTool(join(root, 'loads'), 'v1');
  await assert.rejects(host.call(Lines.wrong, join(root, 'data.txt')), (e: Error) => e instanceof ResultTypeError && /lines/.test(e.message) && /expected number/i.test(e.message));
  const record = audit.list().find((a) => a.begin.command === 'Lines.wrong');
  assert.equal(record?.end?.exitCode, 1);
  assert.match(record?.end?.error ?? '', /declared result type/);
  assert.throws(() => defineTool({ name: 'X', python: { file: join(root, 'missing.py') }, methods: {} }), /cannot read its Python from .*missing\.py/);
  // Python that does not compile: every call says so (the code is sent once).
  const Broken = defineTool({ name: 'Broken', python: 'def go(:\n    return 1\n', methods: { go: defineMethod({ args: z.tuple([]), result: z.number(), operations: () => [] }) } });
  for (let i = 0; i < 2; i++) await assert.rejects(host.call(Broken.go), (e: Error) => e instanceof RemoteError && e.type === 'SyntaxError');
});

test("a cancelled custom call stops where its Python lets it: a loop at rt.check(), a child started with rt.spawn killed (README's custom tools)", async (t) => {
  const { root, context } = setup(t);
  const beats = join(root, 'beats');
  const Work = defineTool({
    name: 'Work',
    python: `import time
def loop(path):
    while True:
        rt.check()
        with open(path, 'a') as f:
            f.write('.')
        time.sleep(0.05)
def child(seconds):
    p = rt.spawn(['sleep', seconds])
    p.wait()
    rt.ungroup(p.pid)
    return p.returncode
`,
    methods: {
      loop: defineMethod({ args: z.tuple([z.string()]), result: z.null(), operations: (path) => [{ kind: 'file.write', path }] }),
      child: defineMethod({ args: z.tuple([z.string()]), result: z.number(), operations: (seconds) => [{ kind: 'exec', argv: ['sleep', seconds] }] }),
    },
  });
  const host = await connect('localhost', { context });
  t.after(() => host.close());
  await assert.rejects(host.callWith({ timeoutMs: 400 }, Work.loop, beats), CallTimeoutError);
  // The cancel reaches the host after the caller's timeout: a beat or two may still come. Then none (a
  // beat every 50 ms while the loop runs).
  let after = -1;
  for (let waited = 0; waited < 5000 && readFileSync(beats, 'utf8').length !== after; waited += 200) {
    after = readFileSync(beats, 'utf8').length;
    await sleep(200);
  }
  await sleep(500);
  assert.equal(readFileSync(beats, 'utf8').length, after, 'the loop stopped at its rt.check()');
  await assert.rejects(host.callWith({ timeoutMs: 400 }, Work.child, '29.62'), CallTimeoutError);
  let left = true;
  for (let waited = 0; left && waited < 3000; waited += 50) {
    left = spawnSync('pgrep', ['-fx', 'sleep 29.62']).status === 0;
    if (left) await sleep(50);
  }
  assert.equal(left, false, "rt.spawn's child was killed with the call");
});

test('arguments of the wrong type are refused before anything reaches the host, and audited', async (t) => {
  const { root, audit, context } = setup(t);
  const marker = join(root, 'loads');
  const Lines = lineTool(marker, 'v1');
  const host = await connect('localhost', { context });
  t.after(() => host.close());
  await assert.rejects(host.call(Lines.count, 42 as unknown as string), (e: Error) => e instanceof ArgumentTypeError && typeof e.actionId === 'number' && /expected string/i.test(e.message));
  assert.deepEqual(loads(marker), [], 'the tool was never sent');
  const record = audit.list().find((a) => a.begin.command === 'Lines.count');
  assert.equal(record?.end?.exitCode, 2);
});

test('policy: a denied declared operation or a policy that does not let the interpreter run refuses the call; nothing is sent', async (t) => {
  const { root, audit, context } = setup(t);
  const marker = join(root, 'loads');
  writeFileSync(join(root, 'secret.txt'), 's\n');
  const Lines = lineTool(marker, 'v1');
  const host = await connect('localhost', { context });
  t.after(() => host.close());
  await assert.rejects(host.call(Lines.count, join(root, 'secret.txt')), (e: Error) => e instanceof DeniedError && /not this one/.test(e.message));
  await assert.rejects(host.call(Lines.count, '/etc/passwd'), DeniedError);
  const Exec = defineTool({ name: 'Rm', python: 'def go():\n    return 1\n', methods: { go: defineMethod({ args: z.tuple([]), result: z.number(), operations: () => [{ kind: 'exec', argv: ['rm', '-rf', '/tmp/x'] }] }) } });
  await assert.rejects(host.call(Exec.go), (e: Error) => e instanceof DeniedError && /rm/.test(e.message));
  const Nothing = defineTool({ name: 'Nothing', python: 'def go():\n    return 1\n', methods: { go: defineMethod({ args: z.tuple([]), result: z.number(), operations: () => [] }) } });
  // Declaring nothing beyond its own code: the interpreter is what the policy checks.
  assert.equal(await host.call(Nothing.go), 1);
  assert.deepEqual(loads(marker), []);
  assert.equal(audit.list().filter((a) => a.begin.decision === 'deny').length, 3);

  // A policy without python3: no custom tool runs, whatever it declares.
  const strict = setup(t, '');
  const other = await connect('localhost', { context: strict.context });
  t.after(() => other.close());
  await assert.rejects(other.call(Lines.count, join(strict.root, 'data.txt')), (e: Error) => e instanceof DeniedError && /no execute_code rule of policy rt allows python3/.test(e.message));
  assert.deepEqual(loads(marker), []);
});

/** A tool that appends a line to a file: a write whose content the caller does not declare. */
function appendTool() {
  return defineTool({
    name: 'Append',
    python: "def line(path, text):\n    with open(path, 'a') as f:\n        f.write(text + '\\n')\n    return True\n",
    methods: { line: defineMethod({ args: z.tuple([z.string(), z.string()]), result: z.boolean(), operations: (path) => [{ kind: 'file.write', path }] }) },
  });
}

test('a declared write is checked as a built-in write: never through a symlink, and an approver sees the call with what it does', async (t) => {
  const writes = '      - { operation: write_file, resource: "/**/out/**" }\n      - { operation: write_file, resource: "/**/out/asked*", effect: ask }\n';
  const { root, audit, context } = setup(t, `      - { operation: execute_code, resource: python3, unsandboxed: true }\n${writes}`);
  mkdirSync(join(root, 'out'));
  const Append = appendTool();
  const questions: string[] = [];
  const host = await connect('localhost', {
    context,
    approve: async (subject) => {
      questions.push(subject.kind === 'exec' ? subject.command : `${subject.kind} ${JSON.stringify(subject)}`);
      return 'deny';
    },
  });
  t.after(() => host.close());
  assert.equal(await host.call(Append.line, join(root, 'out', 'log.txt'), 'one'), true);
  assert.equal(readFileSync(join(root, 'out', 'log.txt'), 'utf8'), 'one\n');

  // A link to a file the policy lets you write: still refused (name the file itself), the file untouched;
  // a link out of the allowed tree is refused by the policy on where it leads.
  symlinkSync(join(root, 'out', 'log.txt'), join(root, 'out', 'link.txt'));
  await assert.rejects(host.call(Append.line, join(root, 'out', 'link.txt'), 'two'), (e: Error) => e instanceof DeniedError && /is a symlink/.test(e.message));
  symlinkSync(join(root, 'data.txt'), join(root, 'out', 'away.txt'));
  await assert.rejects(host.call(Append.line, join(root, 'out', 'away.txt'), 'two'), (e: Error) => e instanceof DeniedError && /no rule of policy rt allows it/.test(e.message));
  assert.equal(readFileSync(join(root, 'out', 'log.txt'), 'utf8'), 'one\n');
  assert.equal(readFileSync(join(root, 'data.txt'), 'utf8'), 'one\ntwo\nthree\n');

  // An ask rule: the approver is asked about the call and everything it does (not an empty write), and refuses.
  await assert.rejects(host.call(Append.line, join(root, 'out', 'asked.txt'), 'three'), (e: Error) => e instanceof DeniedError && /approval refused/.test(e.message));
  assert.equal(existsSync(join(root, 'out', 'asked.txt')), false);
  assert.equal(questions.length, 1);
  assert.match(questions[0]!, /^Append\.line \(write_file .*\/out\/asked\.txt, execute_binary python3\)$/);
  assert.deepEqual(
    audit.list().filter((a) => a.begin.command === 'Append.line').map((a) => [a.begin.decision, a.end?.exitCode]),
    [['allow', 0], ['deny', 77], ['deny', 77], ['ask', 77]],
  );
});

test('the code is sent on first use, once per connection; a changed tool is sent again, an unchanged one never twice', async (t) => {
  const { root, context } = setup(t);
  const marker = join(root, 'loads');
  const v1 = lineTool(marker, 'v1');
  const host = await connect('localhost', { context });
  t.after(() => host.close());
  const file = join(root, 'data.txt');
  // Concurrent first calls: one load.
  await Promise.all([host.call(v1.count, file), host.call(v1.count, file), host.call(v1.count, file)]);
  assert.deepEqual(loads(marker), ['v1']);
  const v2 = lineTool(marker, 'v2');
  assert.equal((await host.call(v2.count, file)).version, 'v2');
  assert.equal((await host.call(v1.count, file)).version, 'v1');
  assert.deepEqual(loads(marker), ['v1', 'v2']);
  // A new connection is a new interpreter: the code goes again.
  const again = await connect('localhost', { context });
  t.after(() => again.close());
  await again.call(v2.count, file);
  assert.deepEqual(loads(marker), ['v1', 'v2', 'v2']);
});
