// The runtime's Template tool against a real local python3: rmote's own documented examples (copied
// verbatim from its README and docs/templating.md, with their expected output), each feature of the
// grammar, error positions, the safe expression subset under attack (each refused, nothing run), the
// host's facts, and Template.file through the policy (write and read of the destination), idempotent.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ADMIN_SCOPE } from '../../src/config/principals.js';
import { CallTimeoutError, connect, DeniedError, RemoteError, renderLocally, Template, type ConnectOptions, type RuntimeHost, type Variables } from '../../src/runtime/index.js';
import { pythonsHere, runtimeContext, tempRoot } from '../support/runtime.js';

function setup(t: TestContext, extraRules = '') {
  const root = tempRoot(t, 'remux-tmpl-');
  mkdirSync(join(root, 'w'));
  mkdirSync(join(root, 'blind'));
  mkdirSync(join(root, 'ro'));
  mkdirSync(join(root, 'asked'));
  writeFileSync(join(root, 'ro/x.conf'), 'old\n');
  const { context, audit } = runtimeContext(
    t,
    `policies:
  rt:
    sandbox: false
    capabilities:
      - { operation: read_file, resource: "${root}/w/**|${root}/ro/**" }
      - { operation: write_file, resource: "${root}/w/**|${root}/blind/**|${root}/asked/**" }
      - { operation: read_file, resource: "${root}/asked/**", effect: ask }
${extraRules}`,
    'rt', { env: 'test', role: 'web' },
  );
  return { root, audit, context };
}

/** One runtime for a whole test: rendering is a call on it. */
async function runtime(t: TestContext, approve?: ConnectOptions['approve']) {
  const s = setup(t);
  const host = await connect('localhost', { context: s.context, ...(approve ? { approve } : {}) });
  t.after(() => host.close());
  const render = (text: string, variables: Variables = {}): Promise<string> => host.call(Template.render, text, variables, { name: 't.tmpl' });
  return { ...s, host, render };
}

/** The template error's message (the host's `t.tmpl:LINE: what`), or a failure if it rendered. */
async function refusal(host: RuntimeHost, text: string, variables: Variables = {}): Promise<string> {
  try {
    const out = await host.call(Template.render, text, variables, { name: 't.tmpl' });
    assert.fail(`rendered instead of refusing: ${JSON.stringify(text)} -> ${JSON.stringify(out)}`);
  } catch (err) {
    assert.ok(err instanceof RemoteError, `${String(err)}`);
    assert.equal(err.type, 'TemplateError', err.message);
    return err.message.replace(/^TemplateError: /, '');
  }
}

test("rmote's documented examples render as its documentation says", async (t) => {
  const { render } = await runtime(t);
  // README: Variable interpolation.
  assert.equal(await render('Hello, ${name}!', { name: 'Alice' }), 'Hello, Alice!');
  assert.equal(await render("${', '.join(sorted(d.keys()))}", { d: { b: 2, a: 1 } }), 'a, b');
  // README: Control flow.
  assert.equal(await render('% for item in items:\n- ${item}\n% endfor', { items: ['alpha', 'beta', 'gamma'] }), '- alpha\n- beta\n- gamma');
  const tmpl = '% if n > 0:\npositive\n% elif n == 0:\nzero\n% else:\nnegative\n% endif';
  assert.equal(await render(tmpl, { n: 1 }), 'positive');
  assert.equal(await render(tmpl, { n: 0 }), 'zero');
  assert.equal(await render(tmpl, { n: -1 }), 'negative');
  // README: comments, %%, \${.
  assert.equal(await render('## ignored\nresult: ${v}', { v: 42 }), 'result: 42');
  assert.equal(await render('%% done ${n}/10', { n: 7 }), '% done 7/10');
  assert.equal(await render(String.raw`\${not_a_var}`), '${not_a_var}');
  // README: Pickling (the template rendered on the remote with host-specific variables).
  assert.equal(await render('server_name ${hostname}; listen ${port};', { hostname: 'example.com', port: 443 }), 'server_name example.com; listen 443;');
  // README: render_template; docs/templating.md adds the singular case.
  const messages = "Hi ${name}, you have ${count} message${'s' if count != 1 else ''}.";
  assert.equal(await render(messages, { name: 'Bob', count: 3 }), 'Hi Bob, you have 3 messages.');
  assert.equal(await render(messages, { name: 'Alice', count: 1 }), 'Hi Alice, you have 1 message.');
  // docs/templating.md: Keys, bare % end, the comment example, the nginx vhost.
  assert.equal(await render("Keys: ${', '.join(sorted(d.keys()))}", { d: { b: 2, a: 1 } }), 'Keys: a, b');
  assert.equal(await render('% for x in xs:\n${x}\n% end', { xs: [1, 2] }), '1\n2');
  assert.equal(await render('## this line is ignored\nresult: ${value}', { value: 42 }), 'result: 42');
  const vhost = await render(
    '## nginx vhost\nserver {\n    listen ${port};\n    server_name ${hostname};\n\n    location / {\n        proxy_pass http://127.0.0.1:${backend_port};\n    }\n}',
    { port: 443, hostname: 'example.com', backend_port: 8080 },
  );
  assert.ok(vhost.includes('server_name example.com;'));
  assert.ok(vhost.includes('proxy_pass http://127.0.0.1:8080;'));
  assert.ok(!vhost.includes('## nginx vhost'));
});

test('every Python from 3.6 to 3.13 found here renders the same and refuses the same', async (t) => {
  const pythons = pythonsHere();
  t.diagnostic(`interpreters: ${pythons.join(', ')}`);
  // Interpreters other than python3, which the policy must allow outright (runtime.test.ts says why).
  const s = setup(t, '      - { operation: execute_binary, resource: "/**" }\n      - { operation: execute_code, resource: "/**", unsandboxed: true }\n');
  for (const python of pythons) {
    const host = await connect('localhost', { context: s.context, python });
    try {
      const render = (text: string, variables: Variables = {}): Promise<string> => host.call(Template.render, text, variables);
      assert.equal(await render("${', '.join(sorted(d.keys()))} ${d['a'] + 1} ${-1} ${None} ${'s' if True else ''}", { d: { b: 2, a: 1 } }), 'a, b 2 -1 None s', python);
      assert.equal(await render('% for x in xs:\n- ${x[1:]}\n% endfor\n', { xs: ['ab', 'cd'] }), '- b\n- d\n', python);
      assert.equal(await render('${host.python}'), host.hello.py);
      for (const attack of ['${().__class__}', "${'a' * 10 ** 9}", "${b'x'}", '${...}', '${(y := 1)}', "${f'{x}'}"]) {
        await assert.rejects(render(attack, { x: 1 }), (e: Error) => e instanceof RemoteError && e.type === 'TemplateError', `${python}: ${attack}`);
      }
    } finally {
      await host.close();
    }
  }
});

test('the grammar: control lines leave no lines behind, rmote newline rule, final newline kept, escapes, literals', async (t) => {
  const { render } = await runtime(t);
  assert.equal(await render(''), '');
  assert.equal(await render('a\n\nb'), 'a\n\nb', 'empty lines are text');
  assert.equal(await render('a\nb\n'), 'a\nb\n', "the template's final newline is kept (rmote drops it)");
  assert.equal(await render('a\n% if False\nb\n% endif'), 'a', 'a newline comes only before a following text line');
  assert.equal(await render('a\n% if False\nb\n% endif\n'), 'a\n');
  assert.equal(await render('  % if x\n  yes\n  % else\n  no\n  % endif', { x: true }), '  yes', 'indented control lines; with or without colons');
  assert.equal(await render('% for k, v in d.items():\n${k}=${v}\n% endfor\n', { d: { a: 1, b: 'two' } }), 'a=1\nb=two\n');
  assert.equal(await render('% for (a, b) in pairs\n${a}${b}\n%\n', { pairs: [[1, 2], [3, 4]] }), '12\n34\n', 'a bare % closes too');
  assert.equal(await render('% for x in xs\n% if x % 2\n${x} odd\n% elif x == 2\ntwo\n% else\n${x} even\n% endif\n% endfor', { xs: [1, 2, 4] }), '1 odd\ntwo\n4 even');
  assert.equal(await render('   ## indented comment\nx'), 'x');
  assert.equal(await render('  %% note\n%%\n%% for x in y:'), '  % note\n%\n% for x in y:', '%% is text, not control');
  assert.equal(await render('\\${a} = ${a}, \\${b}', { a: 1 }), '${a} = 1, ${b}');
  assert.equal(await render('$100 {x} $ ${"}"} ${ {"k": "v"}["k"] } a\\b'), '$100 {x} $ } v a\\b');
  assert.equal(await render('${a}+${b}=${a + b}', { a: 1, b: 2 }), '1+2=3');
  assert.equal(await render('line\r\nnext\r\n'), 'line\r\nnext\r\n', 'CR LF line ends are kept');
  assert.equal(await render('${x} ${y} ${z} ${l} ${d}', { x: null, y: true, z: 1.5, l: [1, 'a'], d: { k: [] } }), "None True 1.5 [1, 'a'] {'k': []}");
});

test('expressions: attribute and item access, comparisons, boolean ops, arithmetic, filters and methods', async (t) => {
  const { render } = await runtime(t);
  const v = { cfg: { port: 8080, names: ['b', 'a'], tls: { on: false } }, s: ' Mixed ', n: 7, p: '443' };
  const cases: Array<[string, string]> = [
    ['${cfg.port} ${cfg["port"]} ${cfg.names[0]} ${cfg.names[-1]} ${cfg.names[0:1]} ${s[1:4]}', "8080 8080 b a ['b'] Mix"],
    ['${n > 5 and n <= 7} ${n == 7 != 8} ${"a" in cfg.names} ${"z" not in cfg.names} ${cfg.tls.on is False} ${not cfg.tls.on}', 'True True True True True True'],
    ['${int(p) == 443} ${p == "443"} ${1 == 1.0} ${True == 1}', 'True True True True'],
    ['${n or 1} ${0 or "x"} ${n and "y"} ${"yes" if cfg.tls.on else "no"}', '7 x y no'],
    ['${n + 1} ${n - 10} ${n * 2} ${n / 2} ${n // 2} ${n % 4} ${-n} ${"ab" * 2} ${[1] + [2]}', '8 -3 14 3.5 3 3 -7 abab [1, 2]'],
    ['${upper(s)}|${lower(s)}|${trim(s)}|${replace(s, "M", "m")}|${join(cfg.names, ",")}|${len(cfg.names)}|${length(s)}', ' MIXED | mixed |Mixed| mixed |b,a|2|7'],
    ['${sorted(cfg.names)} ${int("42") + 1} ${float("1.5")} ${str(n) + "!"} ${json(cfg.tls)} ${json([1, None, "é"])}', `['a', 'b'] 43 1.5 7! {"on": false} [1, null, "é"]`],
    ['${indent("a\\nb\\n\\nc", 2)}|${indent("x\\ny", 1, True)}', 'a\n  b\n\n  c| x\n y'],
    ['${default(missing, "d")} ${default(cfg.nope, "d")} ${default(none, "d")} ${default(n, "d")}', 'd d d 7'],
    ['${s.strip().upper()} ${"a,b".split(",")} ${"-".join(["x", "y"])} ${s.startswith(" M")} ${cfg.get("nope", 1)} ${sorted(cfg.keys())} ${cfg.names.index("a")}', "MIXED ['a', 'b'] x-y True 1 ['names', 'port', 'tls'] 1"],
  ];
  for (const [text, expected] of cases) assert.equal(await render(text, { ...v, none: null }), expected, text);
});

test("host: the inventory's name and labels and the host's own facts; host is reserved", async (t) => {
  const { host, render } = await runtime(t);
  assert.equal(await render('${host.name} ${host.labels.env} ${host.labels["role"]} ${host.hostname} ${host.os}'), `localhost test web ${hostname()} Linux`);
  assert.equal(await render('${host.python}'), host.hello.py);
  assert.match(await refusal(host, '${x}', { host: 'mine' }), /the variable host is reserved/);
  // No host behind it: this machine, without labels.
  assert.equal(await renderLocally('${host.name} ${host.labels} ${x}', { x: 1 }), 'localhost {} 1');
});

test('errors name the template file:line and what is wrong; the whole template is checked before any of it renders', async (t) => {
  const { host } = await runtime(t);
  const cases: Array<[string, RegExp]> = [
    ['a\n% if x\nb', /^t\.tmpl:2: the % if opened at line 2 is never closed \(% endif\)$/],
    ['a\n\n% endif', /^t\.tmpl:3: % endif closes no open block$/],
    ['% for x in y\n% endif', /^t\.tmpl:2: % endif cannot close the % for opened at line 1$/],
    ['% if a\n% else\n% elif b\n% endif', /^t\.tmpl:3: % elif after the % else of the % if opened at line 1$/],
    ['% else', /^t\.tmpl:1: % else outside an % if block$/],
    ['ok\nx ${y', /^t\.tmpl:2: \$\{ at column 3 is never closed with \}$/],
    ['one\ntwo ${1 +}', /^t\.tmpl:2: \$\{1 \+\}: invalid expression/],
    ['% x = 1', /^t\.tmpl:1: % x = 1: not a control line/],
    ['% while True:\n% endwhile', /^t\.tmpl:1: % while True:: not a control line/],
    ['% for 1 in y\n% endfor', /^t\.tmpl:1: % for 1 in y: expected % for NAME/],
    ['% if\n% endif', /^t\.tmpl:1: % if needs a condition$/],
    ['% endfor extra', /^t\.tmpl:1: % endfor takes nothing after it/],
    ['a\nb\n${nope}', /^t\.tmpl:3: undefined variable nope$/],
    ['% for x in ds\nv=${x.missing}\n% endfor', /^t\.tmpl:2: x has no key missing$/],
    ['${s.missing}', /^t\.tmpl:1: a value of type str has no attribute missing$/],
    ['${1 / 0}', /^t\.tmpl:1: division by zero$/],
    ['${"a" < 1}', /^t\.tmpl:1: cannot compare text with a number: convert the text with int\(\.\.\.\)/],
    // Text never equals a number: with port given as text ('443', as --var gives it) this would quietly take the other branch.
    ['% if port == 443\nssl on;\n% endif', /^t\.tmpl:1: cannot compare text with a number: convert the text with int\(\.\.\.\)/],
    ['${1.5 != "1.5"}', /^t\.tmpl:1: cannot compare text with a number/],
    ['${[1] < 1}', /^t\.tmpl:1: cannot compare: '<' not supported/],
    ['${int("x")}', /^t\.tmpl:1: int\('x'\)/],
    ['% for a, b in xs\n% endfor', /^t\.tmpl:1: % for a, b: cannot unpack 1 into 2 names$/],
    ['${s.upper}', /^t\.tmpl:1: a value of type str has no attribute upper$/],
    ['${${}}', /invalid expression|empty expression/],
  ];
  for (const [text, expected] of cases) assert.match(await refusal(host, text, { xs: [1], ds: [{ a: 1 }], s: 'x', port: '443' }), expected, text);
});

test('the safe subset: code in any form is refused before anything renders, and nothing runs', async (t) => {
  const { host, root } = await runtime(t);
  const canary = join(root, 'canary');
  const attacks: Array<[string, RegExp]> = [
    ['${().__class__.__bases__}', /the attribute __bases__ is not allowed.*private/],
    ["${__import__('os').system('touch " + canary + "')}", /the name __import__ is not allowed/],
    ["${__import__('os').system('id')}", /the name __import__ is not allowed/],
    ["${__import__('os')}", /the name __import__ is not allowed in a template expression \(names starting with _ are private\)/],
    ["${getattr(s, '__class__')}", /calling getattr is not allowed in a template expression; only the filters/],
    ["${''.__class__.__mro__[1].__subclasses__()}", /the attribute __\w+__ is not allowed/],
    ['${s.__init__.__globals__}', /the attribute __globals__ is not allowed|the attribute __init__ is not allowed/],
    ['${_private}', /the name _private is not allowed/],
    ["${open('/etc/passwd').read()}", /calling the method \.read|calling open/],
    ["${eval('1')}", /calling eval is not allowed/],
    ["${exec('import os')}", /calling exec is not allowed/],
    ['${(lambda: 1)()}', /calling the result of an expression|lambda/],
    ['${(lambda: 1)}', /lambda is not allowed/],
    ['${[x for x in xs]}', /a comprehension is not allowed/],
    ['${{x: 1 for x in xs}}', /a comprehension is not allowed/],
    ['${list(x for x in xs)}', /a generator expression|calling list/],
    ["${f'{s!r:>10}'}", /an f-string is not allowed/],
    ["${f'{s.__class__}'}", /the attribute __class__ is not allowed/],
    ['${(y := 1)}', /the walrus operator := is not allowed/],
    ['${[*xs]}', /\* unpacking is not allowed/],
    ['${ {**d} }', /\*\* unpacking is not allowed/],
    ['${sorted(xs, key=len)}', /a keyword argument is not allowed/],
    ['${xs()}', /calling xs is not allowed/],
    ['${s.format(1)}', /calling the method \.format is not allowed/],
    ["${'{0.__class__}'.format(s)}", /calling the method \.format is not allowed/],
    ["${'%*d' % (1000000000, 1)}", /% formatting of strings is not allowed/],
    ["${'a' * 10 ** 9}", /the \*\* operator is not allowed/],
    ["${'a' * 1000000000}", /repeating a str of length 1 1000000000 times makes more than a template may hold/],
    ['${[0] * 1000000000}', /repeating a list of length 1 1000000000 times/],
    ['${[[0] * 100000] * 100000}', /repeating a list of length 1 100000 times/],
    ["${replace('a' * 2000000, 'a', 'aaaa')}", /replace would be \d+ characters, more than/],
    [`\${len([${Array(20).fill("'a' * 2000000").join(', ')}])}`, /the template builds more than \d+ characters and items in all/],
    ['${1 << 100000}', /the << operator is not allowed/],
    ["${b'x'}", /a literal of type bytes is not allowed/],
    ['${...}', /a literal of type ellipsis is not allowed/],
    ['${{1, 2}}', /a set is not allowed/],
    ['${' + '('.repeat(1000) + '1' + ')'.repeat(1000) + '}', /nested|invalid expression/],
    ['${' + 'not '.repeat(2000) + '1}', /nested more than 64 deep|nested too deeply/],
    ['${' + '-'.repeat(9000) + '1}', /nested more than 64 deep|nested too deeply/],
    ['${' + '['.repeat(100) + ']'.repeat(100) + '}', /nested more than 64 deep/],
    ['${' + 'x'.repeat(10001) + '}', /longer than the 10000 allowed/],
  ];
  for (const [text, expected] of attacks) {
    // A harmless line first: it never renders, as the whole template is checked before rendering starts.
    assert.match(await refusal(host, `fine\n${text}`, { s: 'str', xs: [1], d: {} }), new RegExp(`^t\\.tmpl:2: (.|\\n)*${expected.source}`), text.slice(0, 80));
  }
  // Checked where it would never render, too.
  assert.match(await refusal(host, "% if False\n${__import__('os').system('touch " + canary + "')}\n% endif"), /^t\.tmpl:2: .*is not allowed/);
  assert.equal(existsSync(canary), false, 'nothing ran');
});

test('work is bounded: a loop of loops stops at the step budget, output at its cap, a timeout stops the render', async (t) => {
  const { host } = await runtime(t);
  const started = Date.now();
  assert.match(await refusal(host, '% for a in [1] * 100000\n% for b in [1] * 100000\n${a}\n% endfor\n% endfor'), /^t\.tmpl:3: the template takes more than 1000000 evaluation steps/);
  assert.ok(Date.now() - started < 10_000, `stopped after ${Date.now() - started} ms`);
  assert.match(await refusal(host, '% for a in [1] * 5000\n${"x" * 1000}\n% endfor'), /^t\.tmpl:2: the output is more than the \d+ characters a template may produce/);
  await assert.rejects(host.callWith({ timeoutMs: 100 }, Template.render, '% for a in [1] * 100000\n% for b in [1] * 100000\n${a}\n% endfor\n% endfor'), CallTimeoutError);
  // The host stopped the work: its interpreter is idle again (CPU ticks in /proc/PID/stat barely move).
  const cpu = (): number => readFileSync(`/proc/${host.hello.pid}/stat`, 'utf8').split(') ')[1]!.split(' ').slice(11, 13).reduce((a, b) => a + Number(b), 0);
  await new Promise((r) => setTimeout(r, 200));
  const before = cpu();
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(cpu() - before <= 5, `the interpreter used ${cpu() - before} ticks in 500 ms after the timeout`);
  assert.equal(await host.call(Template.render, 'still ${x}', { x: 'here' }), 'still here', 'the runtime goes on');
});

test('whole numbers are bounded: squaring in nested loops is refused before a product outgrows the cap', async (t) => {
  const { host } = await runtime(t);
  // Each loop binds the square of the one before: 25 squarings of 11 digits would be 11 * 2^25 digits,
  // one multiplication the host could not interrupt (it went on after the call timed out).
  const names = 'abcdefghijklmnopqrstuvwxyz'.split('');
  const loops = names.slice(1).map((n, i) => `% for ${n} in [${names[i]} * ${names[i]}]`).join('\n');
  const text = `% for a in [99999999999]\n${loops}\n\${z > 0}\n${'% end\n'.repeat(26)}`;
  const started = Date.now();
  assert.match(await refusal(host, text), /^t\.tmpl:\d+: arithmetic on whole numbers of more than 4096 bits is not allowed/);
  assert.ok(Date.now() - started < 5000, `refused after ${Date.now() - started} ms`);
  const a = 2n ** 40n;
  assert.equal(await host.call(Template.render, '${a * a + a // 7 - a % 3}', { a: Number(a) }), String(a * a + a / 7n - (a % 3n)), 'numbers below the cap compute as before');
});

test('every pass of a loop is a step: a loop of empty loops stops at the step budget, on the host and in remux template render', async (t) => {
  const { host } = await runtime(t);
  const L = Array.from({ length: 99_999 }, (_, i) => i);
  const loops = '% for a in L:\n% for b in L:\n% endfor\n% endfor\ndone\n';
  const budget = /^(TemplateError: )?t\.tmpl:2: the template takes more than 1000000 evaluation steps/;
  let started = Date.now();
  await assert.rejects(host.callWith({ timeoutMs: 10_000 }, Template.render, loops, { L }, { name: 't.tmpl' }), (e: Error) => e instanceof RemoteError && budget.test(e.message));
  assert.ok(Date.now() - started < 5000, `stopped after ${Date.now() - started} ms`);
  started = Date.now();
  await assert.rejects(renderLocally(loops, { L }, { name: 't.tmpl' }), (e: Error) => e instanceof RemoteError && budget.test(e.message));
  assert.ok(Date.now() - started < 5000, `stopped after ${Date.now() - started} ms`);
  assert.equal(await host.call(Template.render, loops, { L: [1, 2, 3] }), 'done\n');
});

test('a search or strip is charged its worst case: on every Python here, refused at the step budget before it runs', async (t) => {
  const s = setup(t, '      - { operation: execute_binary, resource: "/**" }\n      - { operation: execute_code, resource: "/**", unsandboxed: true }\n');
  const budget = /the template takes more than 1000000 evaluation steps/;
  for (const python of pythonsHere()) {
    const host = await connect('localhost', { context: s.context, python });
    try {
      const render = (text: string): Promise<string> => host.callWith({ timeoutMs: 10_000 }, Template.render, text, {});
      const started = Date.now();
      // strip(chars) looks each character up in chars: 2 million times through a million, on any Python.
      await assert.rejects(render("${('a' * 2000000).strip('b' * 1000000 + 'a')}"), (e: Error) => e instanceof RemoteError && budget.test(e.message), python);
      // Before 3.10 a search is O(len(text) × len(needle)) at worst; from 3.10 it is linear, and runs.
      const [major, minor] = host.hello.py.split('.').map(Number);
      const search = render("${('a' * 1000000 + 'ba') in 'a' * 2000000} ${len(('a' * 2000000).split('a' * 1000000 + 'ba'))}");
      if (major! === 3 && minor! < 10) await assert.rejects(search, (e: Error) => e instanceof RemoteError && budget.test(e.message), python);
      else assert.equal(await search, 'False 1', python);
      assert.ok(Date.now() - started < 5000, `${python}: done after ${Date.now() - started} ms`);
      assert.equal(await render("${'needle' in 'hay' * 1000} ${'a,b'.split(',')} ${'xxaxx'.strip('x')} ${replace('a-b', '-', '+')}"), "False ['a', 'b'] a a+b", python);
    } finally {
      await host.close();
    }
  }
});

test('a control line is parsed in linear time: a % for with a long run of spaces is refused at once', async (t) => {
  const { host } = await runtime(t);
  const started = Date.now();
  // Cubic backtracking made this (20,000 spaces) run for most of an hour on the host, deaf to the timeout.
  assert.match(await refusal(host, `% for a${' '.repeat(20_000)}x\n% endfor`), /^t\.tmpl:1: % for a +x: expected % for NAME\[, NAME…\] in EXPRESSION/);
  assert.ok(Date.now() - started < 5000, `refused after ${Date.now() - started} ms`);
  assert.equal(await host.call(Template.render, `% for ( k ,  v , )${' '.repeat(1000)}in d.items():\n\${k}=\${v}\n% endfor\n`, { d: { a: 1 } }), 'a=1\n');
});

test("what a render holds is bounded in memory, not only in items: loops each holding a split() of a 2 MB text stop at the build cap", async (t) => {
  const { host } = await runtime(t);
  // Each split() makes 666,666 new strings of some 50 bytes: counted one per item, 40 such loops held 1.9 GB.
  const loops = Array.from({ length: 40 }, (_, i) => `% for x${i} in [s.split()]`).join('\n');
  const text = `% for s in ['ab ' * 666666]\n${loops}\n\${len(x0)}\n${'% end\n'.repeat(41)}`;
  assert.match(await refusal(host, text), /^t\.tmpl:\d+: the template builds more than \d+ characters and items in all/);
  const peakMb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${host.hello.pid}/status`, 'utf8'))![1]) / 1024;
  assert.ok(peakMb < 400, `the host's interpreter peaked at ${Math.round(peakMb)} MB`);
  assert.equal(await host.call(Template.render, "${len(('x ' * 100000).split())}"), '100000', 'a big split on its own still renders');
});

test('a loop does not copy what it loops over: 60 nested loops over a 2 MB string stop at the step budget in little memory', async (t) => {
  const { host } = await runtime(t);
  // Each loop copied its string into a list of 2 million items: 60 of them held 0.9 GB before a step was over.
  const loops = Array.from({ length: 60 }, (_, i) => `% for c${i} in s`).join('\n');
  const text = `% for s in ['a' * 2000000]\n${loops}\n\${c0}\n${'% end\n'.repeat(61)}`;
  assert.match(await refusal(host, text), /^t\.tmpl:\d+: the template takes more than 1000000 evaluation steps/);
  const peakMb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${host.hello.pid}/status`, 'utf8'))![1]) / 1024;
  assert.ok(peakMb < 400, `the host's interpreter peaked at ${Math.round(peakMb)} MB`);
  assert.equal(await host.call(Template.render, '% for k in d\n${k}\n% endfor\n% for c in "xy"\n${c}\n% endfor\n', { d: { b: 1, a: 2 } }), 'b\na\nx\ny\n');
});

test('a value is bounded however it is built: lists sharing one another, compared, hashed or shown in a message, stop at once', async (t) => {
  const { host } = await runtime(t);
  // Each loop binds a list holding the one before four times: 20 loops make 4^20 copies of 100 KB in a few
  // bytes. Comparing two of them (or hashing one) was one C call that never ended, deaf to the call's timeout.
  const shared = (v: string): string => Array.from({ length: 20 }, (_, i) => `% for ${v}${i + 1} in [[${v}${i}, ${v}${i}, ${v}${i}, ${v}${i}]]`).join('\n');
  const bomb = (use: string): string => `% for a0 in [['x' * 10000] * 10]\n% for b0 in [['x' * 10000] * 10]\n${shared('a')}\n${shared('b')}\n${use}\n${'% end\n'.repeat(42)}`;
  const cases: [string, RegExp][] = [
    ['${a20 == b20}', /^t\.tmpl:43: the template takes more than 1000000 evaluation steps/],
    ['${a20 in [b20]}', /^t\.tmpl:43: the template takes more than 1000000 evaluation steps/],
    ['${ {(a20, 1): 1} }', /^t\.tmpl:43: the template takes more than 1000000 evaluation steps/],
    ['${sorted([b20, a20])}', /^t\.tmpl:43: the template takes more than 1000000 evaluation steps/],
    // A message shows a value's start, never all of it.
    ['${int(a20)}', /^t\.tmpl:43: int\(\[\[\[\.\.\.\], .{0,200}: int\(\) argument must be/],
    ['% for p, q in [a20]\n% end', /^t\.tmpl:43: % for p, q: cannot unpack \[\[\[\.\.\.\], .{0,200} into 2 names$/],
  ];
  for (const [use, refused] of cases) {
    const started = Date.now();
    const message = await host.callWith({ timeoutMs: 10_000 }, Template.render, bomb(use), {}, { name: 't.tmpl' }).then(
      () => assert.fail(`${use} rendered`),
      (e: Error) => e.message.replace(/^TemplateError: /, ''),
    );
    assert.match(message, refused, use);
    assert.ok(Date.now() - started < 5000, `${use}: refused after ${Date.now() - started} ms`);
  }
  // Comparing a list walks it: each pass of a loop comparing two lists of 100,000 is charged as much (17 s before).
  const started = Date.now();
  assert.match(await refusal(host, '% for a in [[0] * 100000]\n% for b in [[0] * 100000]\n% for i in a\n${a == b}\n% end\n% end\n% end'), /^t\.tmpl:4: the template takes more than 1000000 evaluation steps/);
  assert.match(await refusal(host, '% for a in [[0] * 100000]\n% for i in a\n${a.count(i)}\n% end\n% end'), /^t\.tmpl:3: the template takes more than 1000000 evaluation steps/);
  assert.ok(Date.now() - started < 5000, `stopped after ${Date.now() - started} ms`);
  const message = await refusal(host, '${int(L)}', { L: Array.from({ length: 100_000 }, () => 0) });
  assert.ok(message.length < 200 && message.startsWith('t.tmpl:1: int([0, 0, 0, 0, 0, 0, ...]): '), message);
  // An infinity is no whole number: a template error naming the line, not a Python OverflowError.
  assert.match(await refusal(host, '${int(float("inf"))}'), /^t\.tmpl:1: int\(inf\): cannot convert float infinity to integer$/);
  assert.equal(await host.call(Template.render, "${[1, 2] == [1, 2]} ${'a' in ['a']} ${sorted([3, 1])} ${ {(1, 2): 'x'}[(1, 2)] } ${[0] * 3 in [[0, 0, 0]]} ${ {'k': 1}.get('k') }"), 'True True [1, 3] x True 1');
});

test('compiling is counted too: a template of 2 MB of expressions, or of deeply nested ones, is refused at the step budget at once', async (t) => {
  const { host } = await runtime(t);
  // Uncounted, 2 MB of ${a} took 24 s to compile on the host (a 16 MiB frame of it minutes), deaf to the call's timeout.
  for (const text of ['${a}'.repeat(500_000), `\${${'['.repeat(60)}${']'.repeat(60)}}\n`.repeat(15_000)]) {
    const started = Date.now();
    assert.match(await refusal(host, text, { a: 1 }), /^t\.tmpl:\d+: the template takes more than 1000000 evaluation steps/);
    assert.ok(Date.now() - started < 8000, `refused after ${Date.now() - started} ms`);
  }
  const config = 'server ${name} ${port};\n'.repeat(10_000);
  assert.equal(await host.call(Template.render, config, { name: 'a', port: 1 }), 'server a 1;\n'.repeat(10_000), 'a long config still renders');
});

test('Template.render is audited as touching nothing; a principal whose scope misses the host is refused', async (t) => {
  const { host, audit, context } = await runtime(t);
  await host.call(Template.render, 'x', {});
  const [rec] = audit.list();
  assert.deepEqual([rec?.begin.operation, rec?.begin.command, rec?.begin.decision, rec?.end?.exitCode], ['runtime.call', 'Template.render', 'allow', 0]);
  const scoped = await connect('localhost', { context: { ...context, principal: { name: 'bot', via: 'token' as const, scope: { ...ADMIN_SCOPE, admin: false, hosts: 'web*', policies: [] } } } });
  t.after(() => scoped.close());
  await assert.rejects(scoped.call(Template.render, 'x', {}), DeniedError);
  assert.deepEqual(audit.list().at(-1)?.begin.principal, 'bot');
  assert.deepEqual(audit.list().at(-1)?.begin.decision, 'deny');
});

test('Template.file: written atomically with its mode, a diff; the second run changes nothing; new variables change it', async (t) => {
  const { host, root, audit } = await runtime(t);
  const target = join(root, 'w/app.conf');
  const text = '## app\nport ${port}\n% for n in names\nname ${n}\n% endfor\n';
  const first = await host.call(Template.file, target, text, { port: 80, names: ['a', 'b'] }, { mode: 0o640, name: 'app.conf.tmpl' });
  assert.deepEqual(first, { changed: true, created: true, diff: `--- /dev/null\n+++ ${target}\n@@ -0,0 +1,3 @@\n+port 80\n+name a\n+name b\n` });
  assert.equal(readFileSync(target, 'utf8'), 'port 80\nname a\nname b\n');
  assert.equal(statSync(target).mode & 0o777, 0o640);
  assert.deepEqual(await host.call(Template.file, target, text, { port: 80, names: ['a', 'b'] }, { mode: 0o640 }), { changed: false, created: false, diff: '' });
  const third = await host.call(Template.file, target, text, { port: 443, names: ['a', 'b'] });
  assert.equal(third.changed, true);
  assert.match(third.diff, /^-port 80\n\+port 443\n/m);
  assert.equal(statSync(target).mode & 0o777, 0o640, 'the mode is kept');
  const writes = audit.list().filter((a) => a.begin.command === 'Template.file');
  assert.deepEqual(writes.map((a) => [a.begin.operation, a.begin.resource, a.begin.decision, a.end?.exitCode]), Array(3).fill(['write_file', target, 'allow', 0]));
  // A template error writes nothing.
  await assert.rejects(host.call(Template.file, target, 'port ${nope}\n', {}, { name: 'app.conf.tmpl' }), (e: Error) => e instanceof RemoteError && /app\.conf\.tmpl:1: undefined variable nope/.test(e.message));
  assert.equal(readFileSync(target, 'utf8'), 'port 443\nname a\nname b\n');
});

test('Template.file: a file over 1 MiB is written with a note that its diff was left out', async (t) => {
  const { host, root } = await runtime(t);
  const target = join(root, 'w/big.conf');
  const body = `${'x'.repeat(1023)}\n`.repeat(1536);
  const r = await host.call(Template.file, target, 'port ${port}\n${body}', { port: 80, body });
  assert.deepEqual(r, { changed: true, created: true, diff: '(diff left out: the file is 1.5 MiB, over the 1 MiB a diff is made for)\n' });
  assert.equal(readFileSync(target, 'utf8'), `port 80\n${body}`);
});

test("Template.file: a read rule that asks goes to the approver (the diff shows the file's content); refused, nothing is written", async (t) => {
  const asked: string[] = [];
  let answer: 'allow' | 'deny' = 'deny';
  const { host, root } = await runtime(t, async (subject) => {
    asked.push(`${subject.kind} ${'path' in subject ? subject.path : ''}`);
    return answer;
  });
  const target = join(root, 'asked/x.conf');
  await assert.rejects(host.call(Template.file, target, 'v ${v}\n', { v: 1 }), (e: Error) => e instanceof DeniedError && /approval refused/.test(e.message));
  assert.equal(existsSync(target), false);
  answer = 'allow';
  assert.equal((await host.call(Template.file, target, 'v ${v}\n', { v: 1 })).changed, true);
  assert.equal(readFileSync(target, 'utf8'), 'v 1\n');
  assert.deepEqual(asked, [`file.write ${target}`, `file.write ${target}`]);
});

test('Template.file through the policy: no write_file, no read_file (its diff), a symlink: refused, nothing written', async (t) => {
  const { host, root, audit } = await runtime(t);
  await assert.rejects(host.call(Template.file, join(root, 'ro/x.conf'), 'new\n'), (e: Error) => e instanceof DeniedError);
  assert.equal(readFileSync(join(root, 'ro/x.conf'), 'utf8'), 'old\n');
  await assert.rejects(host.call(Template.file, join(root, 'elsewhere.conf'), 'new\n'), DeniedError);
  assert.equal(existsSync(join(root, 'elsewhere.conf')), false);
  await assert.rejects(host.call(Template.file, join(root, 'blind/x.conf'), 'new\n'), (e: Error) => e instanceof DeniedError && /returns a diff of what .*blind\/x\.conf held, and the policy does not let you read it/.test(e.message));
  assert.equal(existsSync(join(root, 'blind/x.conf')), false);
  writeFileSync(join(root, 'w/real.conf'), 'real\n');
  symlinkSync(join(root, 'w/real.conf'), join(root, 'w/link.conf'));
  await assert.rejects(host.call(Template.file, join(root, 'w/link.conf'), 'new\n'), (e: Error) => e instanceof DeniedError && /is a symlink/.test(e.message));
  assert.equal(readFileSync(join(root, 'w/real.conf'), 'utf8'), 'real\n');
  const denied = audit.list().filter((a) => a.begin.command === 'Template.file');
  assert.deepEqual(denied.map((a) => a.begin.decision), ['deny', 'deny', 'deny', 'deny']);
});
