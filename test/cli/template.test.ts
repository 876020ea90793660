// `remux template render` end to end: the real CLI renders in a local python3 with --var and
// --vars-file, prints JSON on --json, and exits 2 naming FILE:LINE on a template error, a bad --var or
// a bad vars file, without running anything a template tries to call.
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { remux, tempHome } from '../support/cli.js';

describe('remux template render', () => {
  const h = tempHome();
  const file = (name: string, text: string): string => {
    writeFileSync(join(h.home, name), text);
    return name;
  };
  // Relative names resolve against the working directory, and errors use the name as given.
  const run = (args: string[]) => remux(['template', 'render', ...args], { env: h.env, cwd: h.home });
  after(() => h.remove());

  test('renders with --var and --vars-file (YAML or JSON, typed), --var winning', async () => {
    file('site.tmpl', '## a comment\nserver_name ${name};\n% for p in ports\nlisten ${p}${" ssl" if tls else ""};\n% endfor\n${host.name}\n');
    file('vars.yaml', 'name: from-file\nports: [80, 443]\ntls: true\n');
    file('vars.json', '{"name": "json", "ports": [8080], "tls": false}');
    const yaml = await run(['site.tmpl', '--vars-file', 'vars.yaml', '--var', 'name=example.com']);
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.equal(yaml.stdout, 'server_name example.com;\nlisten 80 ssl;\nlisten 443 ssl;\nlocalhost\n');
    const json = await run(['site.tmpl', '--vars-file', 'vars.json', '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), { text: 'server_name json;\nlisten 8080;\nlocalhost\n' });
  });

  test('a template error exits 2 naming FILE:LINE; --json gives it as fields', async () => {
    file('bad.tmpl', 'ok\n% if port >\nx\n% endif\n');
    const r = await run(['bad.tmpl']);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^remux: bad\.tmpl:2: \$\{port >\}: invalid expression/);
    const j = await run(['bad.tmpl', '--json']);
    assert.equal(j.code, 2);
    assert.deepEqual({ ...JSON.parse(j.stdout).error, message: undefined }, { type: 'TemplateError', message: undefined, file: 'bad.tmpl', line: 2 });
    file('unclosed.tmpl', 'a\nb\n% for x in xs\n${x}\n');
    assert.match((await run(['unclosed.tmpl', '--var', 'xs=ab'])).stderr, /^remux: unclosed\.tmpl:3: the % for opened at line 3 is never closed/);
    const undef = await run([file('undef.tmpl', 'a\n\nport ${port}\n')]);
    assert.deepEqual([undef.code, undef.stderr], [2, 'remux: undef.tmpl:3: undefined variable port\n']);
    // --var port=443 is the text '443', never equal to the number 443: a test of it is refused, not quietly false.
    file('ssl.tmpl', 'server {\n% if port == 443\n    ssl on;\n% endif\n}\n');
    const text = await run(['ssl.tmpl', '--var', 'port=443']);
    assert.deepEqual([text.code, text.stdout], [2, '']);
    assert.match(text.stderr, /^remux: ssl\.tmpl:2: cannot compare text with a number: convert the text with int\(\.\.\.\)/);
    const typed = await run(['ssl.tmpl', '--vars-file', file('port.yaml', 'port: 443\n')]);
    assert.deepEqual([typed.code, typed.stdout], [0, 'server {\n    ssl on;\n}\n']);
  });

  test('code in a template is refused (exit 2) and never runs', async () => {
    const canary = join(h.home, 'canary');
    file('evil.tmpl', `fine\n\${__import__('os').system('touch ${canary}')}\n`);
    const r = await run(['evil.tmpl']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^remux: evil\.tmpl:2: .* is not allowed in a template expression/);
    file('evil2.tmpl', "${().__class__.__bases__[0].__subclasses__()}\n");
    assert.match((await run(['evil2.tmpl'])).stderr, /^remux: evil2\.tmpl:1: .*private/);
    assert.equal(existsSync(canary), false);
  });

  test('bad input: a missing file, a --var without =, a reserved or private name, a broken vars file: exit 2, said where; no interpreter: exit 1', async () => {
    file('t.tmpl', '${a}\n');
    const cases: Array<[string[], RegExp]> = [
      [['missing.tmpl'], /^remux: cannot read missing\.tmpl: no such file/],
      [['t.tmpl', '--var', 'novalue'], /^remux: --var novalue: expected KEY=VALUE/],
      [['t.tmpl', '--var', 'host=x'], /the variable host is reserved/],
      [['t.tmpl', '--var', '_a=x'], /"_a" is not a variable name/],
      [['t.tmpl', '--vars-file', file('broken.yaml', 'a: 1\nb: [1,\n')], /^remux: broken\.yaml:\d+: /],
      [['t.tmpl', '--vars-file', file('list.yaml', '- 1\n')], /^remux: list\.yaml: expected a mapping/],
      [['t.tmpl', '--vars-file', file('dup.yaml', 'a: 1\na: 2\n')], /^remux: dup\.yaml:2: /],
    ];
    for (const [args, expected] of cases) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, expected);
    }
    const noPython = await run(['t.tmpl', '--var', 'a=1', '--python', '/nonexistent/python3']);
    assert.deepEqual([noPython.code, noPython.stdout], [1, '']);
    assert.equal(noPython.stderr, 'remux: /nonexistent/python3 (local process): there is no /nonexistent/python3; the runtime needs a python3, 3.8 or later: install one there, or name another interpreter (--python PATH)\n');
    const notInPath = await run(['t.tmpl', '--var', 'a=1', '--python', 'python2.1']);
    assert.equal(notInPath.code, 1);
    assert.match(notInPath.stderr, /^remux: python2\.1 \(local process\): python2\.1 is not in the PATH it was looked up in \(\/usr\/local\/sbin:.*\); the runtime needs a python3/);
  });

  test('python3 is looked up in exec.secure_path from config.yaml, as rpc localhost does', async () => {
    file('p.tmpl', '${a}\n');
    writeFileSync(join(h.home, 'config.yaml'), `exec:\n  secure_path: ${h.home}/empty-bin\n`);
    try {
      const r = await run(['p.tmpl', '--var', 'a=1']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`python3 is not in the PATH it was looked up in \\(${h.home}/empty-bin\\)`));
    } finally {
      rmSync(join(h.home, 'config.yaml'));
    }
  });

  test('--help shows the grammar and examples', async () => {
    const r = await run(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Examples:\n {2}remux template render nginx\.conf\.tmpl --var port=443/);
    assert.match(r.stdout, /% if EXPR/);
  });
});
