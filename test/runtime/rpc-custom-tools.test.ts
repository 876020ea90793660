// `remux rpc --tools FILE`: custom tools (defineTool) from a user's ES module, called by the real CLI like
// built-ins, on the local host (a python3 subprocess) and over the test fleet's sshd hosts. The module
// lives in a throwaway project whose node_modules holds remux (this checkout) and zod, as a user's would,
// so it imports its own copy of remux/runtime, not the CLI's bundle. Covered: typed values (text and
// --json), the command line mapped onto the zod tuple (positional words, --options, --args-json), usage
// errors naming the argument, policy denials (77, the rule, audited), every loading error, and a running
// daemon: it declines the command line, which runs in the CLI process, audited as the CLI's principal.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AuditStore } from '../../src/audit/store.js';
import { remux, REPO_ROOT, tempHome } from '../support/cli.js';
import { startFleetHome, type FleetHome } from '../support/runtime.js';

const TOOLS = `import { z } from 'zod';
import { defineMethod, defineTool } from 'remux/runtime';
import { appendFileSync } from 'node:fs';

// Which process imported this module: the CLI's, never the daemon's.
if (process.env.LOADED_BY) appendFileSync(process.env.LOADED_BY, process.pid + '\\n');

const read = (path) => [{ kind: 'file.read', path }];
export const Lines = defineTool({
  name: 'Lines',
  python: \`def count(path, opts):
    with open(path) as f:
        lines = f.read().splitlines()
    if opts.get('skipBlank'):
        lines = [l for l in lines if l.strip()]
    return {'path': path, 'lines': len(lines), 'tags': opts.get('tags') or []}
def head(path, n):
    with open(path) as f:
        return f.read().splitlines()[:n]
def plan(path, opts):
    return 'chmod %o %s' % (opts['mode'], path)
def grep(spec):
    with open(spec['path']) as f:
        return [l for l in f.read().splitlines() if any(p['word'] in l for p in spec['patterns'])]
\`,
  methods: {
    count: defineMethod({
      args: z.tuple([z.string().describe('path'), z.object({ skipBlank: z.boolean().optional(), tags: z.array(z.string()).optional() }).optional()]),
      result: z.object({ path: z.string(), lines: z.number().int(), tags: z.array(z.string()) }),
      operations: read,
    }),
    head: defineMethod({ args: z.tuple([z.string().describe('path'), z.number().int().positive().describe('n')]), result: z.array(z.string()), operations: read }),
    plan: defineMethod({ args: z.tuple([z.string().describe('path'), z.object({ mode: z.number().int() })]), result: z.string(), operations: read }),
    grep: defineMethod({
      args: z.tuple([z.object({ path: z.string(), patterns: z.array(z.object({ word: z.string() })) })]),
      result: z.array(z.string()),
      operations: (spec) => read(spec.path),
    }),
  },
});
`;

/** A user's project: node_modules with remux (this checkout) and zod; the tools module; a data directory. */
function project(): { dir: string; data: string; remove(): void } {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'remux-rpc-tools-')));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(REPO_ROOT, join(dir, 'node_modules/remux'));
  symlinkSync(join(REPO_ROOT, 'node_modules/zod'), join(dir, 'node_modules/zod'));
  writeFileSync(join(dir, 'tools.mjs'), TOOLS);
  const data = join(dir, 'data');
  mkdirSync(data);
  writeFileSync(join(data, 'a.txt'), 'alpha\n\nbeta\ngamma\n');
  writeFileSync(join(data, 'secret.txt'), 'no\n');
  return { dir, data, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const policies = (data: string): string => `policies:
  rt:
    sandbox: false
    capabilities:
      - { operation: read_file, resource: "${data}/secret*", effect: deny, reason: secrets stay }
      - { operation: read_file, resource: "${data}/**" }
      - { operation: execute_binary, resource: python3 }
      - { operation: execute_code, resource: python3, unsandboxed: true }
      - { operation: write_stdout }
  nopython:
    sandbox: false
    capabilities:
      - { operation: read_file, resource: "${data}/**" }
      - { operation: execute_binary, resource: python3 }
`;

/** The audit records of $REMUX_HOME's store (the CLI's and the daemon's) whose command is `command`. */
function audited(home: string, command: string) {
  const audit = AuditStore.open(join(home, 'audit.db'));
  try {
    return audit.list().filter((a) => a.begin.command === command);
  } finally {
    audit.close();
  }
}

describe('remux rpc --tools on the local host', { timeout: 120_000 }, () => {
  const h = tempHome();
  const p = project();
  const rpc = (...args: string[]) => remux(['rpc', 'localhost', '--tools', './tools.mjs', ...args], { env: h.env, cwd: p.dir, via: 'node' });

  before(() => {
    writeFileSync(join(h.home, 'policies.yaml'), policies(p.data));
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: rt\n');
  });
  after(() => {
    h.remove();
    p.remove();
  });

  test('a custom method gives its typed value: positional words and --options from its zod tuple, as text and --json', async () => {
    const a = join(p.data, 'a.txt');
    const json = await rpc('Lines.count', a, '--skip-blank', '--tags', 'x', '--tags', 'y', '--json');
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), { host: 'localhost', ok: true, value: { path: a, lines: 3, tags: ['x', 'y'] } });
    const text = await rpc('Lines.count', a);
    assert.deepEqual([text.code, text.stdout], [0, `{"path":"${a}","lines":4,"tags":[]}\n`]);
    // A number argument from its word; a list value one line per item, as for built-ins.
    const head = await rpc('Lines.head', a, '2');
    assert.deepEqual([head.code, head.stdout], [0, 'alpha\n\n']);
    const grep = await rpc('Lines.grep', '--args-json', JSON.stringify([{ path: a, patterns: [{ word: 'et' }, { word: 'mm' }] }]), '--json');
    assert.deepEqual(JSON.parse(grep.stdout).value, ['beta', 'gamma']);
    const rows = audited(h.home, 'Lines.count');
    assert.equal(rows.length, 2);
    // Checked as the built-ins are: the file it declares, and the interpreter its Python runs in.
    assert.deepEqual([rows[0]?.begin.operation, rows[0]?.begin.resource, rows[0]?.begin.principal, rows[0]?.end?.exitCode], ['read_file,execute_binary', `${a} ${realpathSync('/usr/bin/python3')}`, `cli:${userInfo().username}`, 0]);
  });

  test("--mode goes to a custom method with a mode option, in octal as for the built-ins; one without refuses it", async () => {
    const a = join(p.data, 'a.txt');
    const planned = await rpc('Lines.plan', a, '--mode', '0640');
    assert.deepEqual([planned.code, planned.stdout], [0, `chmod 640 ${a}`], planned.stderr);
    const bad = await rpc('Lines.plan', a, '--mode', 'rw-r-----');
    assert.deepEqual([bad.code, bad.stderr], [2, 'remux: Lines.plan: --mode is an octal mode such as 0644, got "rw-r-----"\n']);
    const none = await rpc('Lines.count', a, '--mode', '0640');
    assert.deepEqual([none.code, none.stderr], [2, "remux: Lines.count takes no --mode (it is the mode of what FileSystem.writeText, lineInFile, ensureDirectory and Template.file write, or a custom tool's mode option)\n"]);
  });

  test('bad arguments: a usage error (2) naming the argument as the command line gave it; nothing audited, nothing sent', async () => {
    const a = join(p.data, 'a.txt');
    const earlier = audited(h.home, 'Lines.head').length;
    const n = await rpc('Lines.head', a, 'two');
    assert.equal(n.code, 2);
    assert.match(n.stderr, /Lines\.head: N \(argument 2\): Invalid input: expected number, received string \(usage: Lines\.head PATH N\)/);
    const neg = await rpc('Lines.head', a, '-1');
    assert.deepEqual([neg.code, /N \(argument 2\): Too small/i.test(neg.stderr)], [2, true], neg.stderr);
    const flag = await rpc('Lines.count', a, '--skip-blank=maybe');
    assert.deepEqual([flag.code, /--skip-blank is true or false, got "maybe"/.test(flag.stderr)], [2, true], flag.stderr);
    const unknown = await rpc('Lines.count', a, '--limit', '3');
    assert.deepEqual([unknown.code, /Lines\.count has no option --limit \(its options: --skip-blank, --tags\)/.test(unknown.stderr)], [2, true], unknown.stderr);
    const missing = await rpc('Lines.head');
    assert.deepEqual([missing.code, /Lines\.head needs its path/.test(missing.stderr)], [2, true], missing.stderr);
    const shape = await rpc('Lines.grep', a);
    assert.deepEqual([shape.code, /Lines\.grep takes its arguments only as --args-json '\[…\]': the field patterns of its options \(argument 1\) is of type array/.test(shape.stderr)], [2, true], shape.stderr);
    const deep = await rpc('Lines.grep', '--args-json', JSON.stringify([{ path: a, patterns: [{ word: 1 }] }]));
    assert.deepEqual([deep.code, /Lines\.grep: argument 1\["patterns"\]\[0\]\["word"\]: Invalid input: expected string, received number/.test(deep.stderr)], [2, true], deep.stderr);
    const notJson = await rpc('Lines.grep', '--args-json', '[{');
    assert.deepEqual([notJson.code, /--args-json is not JSON/.test(notJson.stderr)], [2, true]);
    const both = await rpc('Lines.head', a, '--args-json', '[]');
    assert.deepEqual([both.code, /as words or as --args-json, not both/.test(both.stderr)], [2, true]);
    const builtIn = await remux(['rpc', 'localhost', 'FileSystem.readText', '--args-json', '["/etc/hostname"]'], { env: h.env, via: 'node' });
    assert.deepEqual([builtIn.code, /--args-json gives the arguments of a custom tool's method/.test(builtIn.stderr)], [2, true]);
    assert.equal(audited(h.home, 'Lines.head').length, earlier);
  });

  test('policy: a denied declared operation, or no execute_code for the interpreter, exits 77 with the rule; audited', async () => {
    const denied = await rpc('Lines.count', join(p.data, 'secret.txt'));
    assert.equal(denied.code, 77);
    assert.match(denied.stderr, /read_file .*secret\.txt: denied by rt#0 \(policies.yaml:5\): secrets stay/);
    const json = await rpc('Lines.count', join(p.data, 'secret.txt'), '--json');
    assert.equal(JSON.parse(json.stdout).error.type, 'DeniedError');
    const noPython = await rpc('Lines.count', join(p.data, 'a.txt'), '-p', 'nopython');
    assert.equal(noPython.code, 77);
    assert.match(noPython.stderr, /no execute_code rule of policy nopython allows python3/);
    const rows = audited(h.home, 'Lines.count').filter((a) => a.begin.decision === 'deny');
    assert.equal(rows.length, 3);
    assert.ok(rows.every((a) => a.begin.principal === `cli:${userInfo().username}` && a.begin.host === 'localhost'));
    assert.match(rows[0]?.begin.rule ?? '', /rt#0/);
  });

  test('loading errors: missing file, TypeScript, not a module, no tools, unknown Tool.method, a built-in\'s name', async () => {
    const run = (file: string, method = 'Lines.count') => remux(['rpc', 'localhost', '--tools', file, method, 'x'], { env: h.env, cwd: p.dir, via: 'node' });
    writeFileSync(join(p.dir, 'tools.ts'), TOOLS);
    writeFileSync(join(p.dir, 'broken.mjs'), 'export const = 1;\n');
    writeFileSync(join(p.dir, 'tools.json'), '{}\n');
    writeFileSync(join(p.dir, 'plain.mjs'), 'export const answer = 42;\nexport default function f() {}\n');
    writeFileSync(join(p.dir, 'clash.mjs'), TOOLS.replace("name: 'Lines'", "name: 'Service'"));
    writeFileSync(join(p.dir, 'again.mjs'), TOOLS);
    const cases: Array<[Promise<{ code: number | null; stderr: string }>, RegExp]> = [
      [run('./nope.mjs'), /--tools \.\/nope\.mjs: no such file \(.*\/nope\.mjs\)/],
      [run('./tools.ts'), /--tools \.\/tools\.ts: a TypeScript file; Node 20 has no TypeScript loader, so compile it first .* and give the \.js or \.mjs/],
      [run('./broken.mjs'), /--tools \.\/broken\.mjs: cannot load it as an ES module: Unexpected token/],
      [run('./tools.json'), /--tools \.\/tools\.json: not a JavaScript module \(\.js or \.mjs\)/],
      [run('./plain.mjs'), /--tools \.\/plain\.mjs: it exports no tool made with defineTool \(its exports: answer, default\)/],
      [run('./tools.mjs', 'Lines.tail'), /Lines has no method "tail" \(its methods: Lines\.count, Lines\.head, Lines\.plan, Lines\.grep\)/],
      [run('./tools.mjs', 'Words.count'), /unknown method "Words\.count" \(from --tools: Lines\.count, Lines\.head, Lines\.plan, Lines\.grep; built in: FileSystem\.readText, /],
      [run('./clash.mjs', 'Service.count'), /--tools \.\/clash\.mjs: its tool Service has the name of the built-in tool Service \(Service\.start, .*\); rename it/],
      [remux(['rpc', 'localhost', '--tools', './tools.mjs', '--tools', './again.mjs', 'Lines.count', 'x'], { env: h.env, cwd: p.dir, via: 'node' }), /--tools \.\/again\.mjs: its tool Lines is also defined by --tools \.\/tools\.mjs; rename one/],
    ];
    for (const [result, message] of cases) {
      const r = await result;
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    }
    // Built-ins stay callable beside a module's tools.
    const hostname = await remux(['rpc', 'localhost', '--tools', './tools.mjs', 'FileSystem.readText', join(p.data, 'a.txt')], { env: h.env, cwd: p.dir, via: 'node' });
    assert.deepEqual([hostname.code, hostname.stdout], [0, 'alpha\n\nbeta\ngamma\n']);
  });

  test('python: { file } from a module in another directory: a URL from import.meta.url is beside the module, a relative path is from the working directory and its error says so', async () => {
    mkdirSync(join(p.dir, 'lib'));
    writeFileSync(join(p.dir, 'lib/lines.py'), "def first(path):\n    with open(path) as f:\n        return f.readline().rstrip('\\n')\n");
    const module = (file: string): string => `import { z } from 'zod';
import { defineMethod, defineTool } from 'remux/runtime';
export const Lib = defineTool({
  name: 'Lib',
  python: { file: ${file} },
  methods: { first: defineMethod({ args: z.tuple([z.string()]), result: z.string(), operations: (path) => [{ kind: 'file.read', path }] }) },
});
`;
    writeFileSync(join(p.dir, 'lib/beside.mjs'), module("new URL('./lines.py', import.meta.url)"));
    writeFileSync(join(p.dir, 'lib/relative.mjs'), module("'./lines.py'"));
    const beside = await remux(['rpc', 'localhost', '--tools', './lib/beside.mjs', 'Lib.first', join(p.data, 'a.txt')], { env: h.env, cwd: p.dir, via: 'node' });
    assert.deepEqual([beside.code, beside.stdout], [0, 'alpha'], beside.stderr);
    const relative = await remux(['rpc', 'localhost', '--tools', './lib/relative.mjs', 'Lib.first', join(p.data, 'a.txt')], { env: h.env, cwd: p.dir, via: 'node' });
    assert.equal(relative.code, 2);
    assert.match(relative.stderr, /--tools \.\/lib\/relative\.mjs: cannot load it as an ES module: defineTool Lib: cannot read its Python from .*\/remux-rpc-tools-[^/]+\/lines\.py: ENOENT.* \(a relative path is from the working directory; for a file beside the module give new URL\("\.\/lines\.py", import\.meta\.url\)\)/);
  });

  test('with a daemon running: it declines --tools (it never imports user code); the CLI process runs the call, audited as its principal', async () => {
    const started = await remux(['daemon', 'start'], { env: h.env });
    assert.equal(started.code, 0, started.stderr);
    try {
      const loadedBy = join(p.dir, 'loaded-by');
      const a = join(p.data, 'a.txt');
      const env = { ...h.env, REMUX_LAUNCHER_DEBUG: '1', LOADED_BY: loadedBy };
      const served = await remux(['rpc', 'localhost', '--tools', './tools.mjs', 'Lines.head', a, '1'], { env, cwd: p.dir });
      assert.equal(served.code, 0, served.stderr);
      assert.equal(served.stdout, 'alpha\n');
      assert.match(served.stderr, /the daemon declined: --tools \(the daemon never imports user code/);
      // So is `--tools=FILE`, and the Node CLI never forwards such a line.
      const attached = await remux(['rpc', 'localhost', '--tools=./tools.mjs', 'Lines.head', a, '1'], { env, cwd: p.dir });
      assert.deepEqual([attached.code, /the daemon declined: --tools/.test(attached.stderr)], [0, true], attached.stderr);
      const node = await remux(['rpc', 'localhost', '--tools', './tools.mjs', 'Lines.head', a, '1'], { env, cwd: p.dir, via: 'node' });
      assert.deepEqual([node.code, node.stdout], [0, 'alpha\n']);
      // Each import happened in a process that has exited since: a CLI process, not the daemon.
      const pids = readFileSync(loadedBy, 'utf8').trim().split('\n').map(Number);
      assert.equal(pids.length, 3);
      for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/);
      const rows = audited(h.home, 'Lines.head').filter((r) => r.end?.exitCode === 0);
      assert.equal(rows.length, 4, 'the first test\'s call and these three');
      assert.ok(rows.every((r) => r.begin.principal === `cli:${userInfo().username}`));
      // A built-in call is still served by the daemon.
      const builtIn = await remux(['rpc', 'localhost', 'FileSystem.readText', a], { env, cwd: p.dir });
      assert.deepEqual([builtIn.code, /forwarding to the daemon/.test(builtIn.stderr), /declined/.test(builtIn.stderr)], [0, true, false]);
    } finally {
      await remux(['daemon', 'stop'], { env: h.env });
    }
  });
});

describe('remux rpc --tools over SSH', { timeout: 120_000 }, () => {
  let f: FleetHome;
  const p = project();
  const env = (): Record<string, string> => f.env();

  before(async () => {
    f = await startFleetHome({ policies: policies(p.data), config: 'default_policy: rt\n' });
  });
  after(async () => {
    await f?.stop();
    p.remove();
  });

  test('fanned out over the fleet: a line per host and the summary; a denial on every host exits 77', async () => {
    const a = join(p.data, 'a.txt');
    const fan = await remux(['rpc', 'env=prod', '--tools', './tools.mjs', 'Lines.count', a, '--skip-blank'], { env: env(), cwd: p.dir });
    assert.equal(fan.code, 0, fan.stderr);
    assert.match(fan.stdout, new RegExp(`^h1: \\{"path":"${a}","lines":3,"tags":\\[\\]\\}$`, 'm'));
    assert.match(fan.stdout, new RegExp(`^h2: \\{"path":"${a}","lines":3,"tags":\\[\\]\\}$`, 'm'));
    assert.match(fan.stderr, /2 hosts: 0 changed, 2 ok, 0 failed, 0 denied, 0 unreachable/);
    const json = await remux(['rpc', 'env=prod', '--tools', './tools.mjs', 'Lines.head', a, '1', '--json'], { env: env(), cwd: p.dir });
    const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.filter((l) => 'host' in l).map((l) => [l.host, l.value]).sort(), [['h1', ['alpha']], ['h2', ['alpha']]]);
    assert.deepEqual(lines.at(-1), { summary: { total: 2, ok: 2, changed: 0, failed: 0, denied: 0, unreachable: 0, hosts: 2 } });
    const denied = await remux(['rpc', 'env=prod', '--tools', './tools.mjs', 'Lines.count', join(p.data, 'secret.txt')], { env: env(), cwd: p.dir });
    assert.equal(denied.code, 77);
    assert.match(denied.stderr, /2 hosts: 0 changed, 0 ok, 0 failed, 2 denied, 0 unreachable/);
    const rows = audited(f.home, 'Lines.count');
    assert.deepEqual(rows.map((r) => [r.begin.host, r.begin.decision]).sort(), [['h1', 'allow'], ['h1', 'deny'], ['h2', 'allow'], ['h2', 'deny']]);
  });
});
