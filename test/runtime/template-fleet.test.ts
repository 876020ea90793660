// Templates rendered on real SSH hosts (the test fleet's sshd): each host renders the same template
// with its own inventory name and labels and its own facts, Template.file writes per host and is
// idempotent, and a write the policy does not allow is refused on every host; the same from the
// command line (`remux rpc HOST Template.render|file` with a local template file and --var/--vars-file).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type GatewayContext } from '../../src/core/context.js';
import { connect, DeniedError, Template } from '../../src/runtime/index.js';
import { remux } from '../support/cli.js';
import { startFleetHome, type FleetHome } from '../support/runtime.js';

describe('templates over SSH', { timeout: 120_000 }, () => {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'remux-tmpl-ssh-')));
  let f: FleetHome;
  let ctx: GatewayContext;

  before(async () => {
    f = await startFleetHome(
      {
        policies: `policies:\n  rt:\n    sandbox: false\n    capabilities:\n      - { operation: read_file, resource: "${root}/**" }\n      - { operation: write_file, resource: "${root}/**" }\n`,
        config: 'default_policy: rt\n',
      },
      2,
      (i) => `env: prod, role: ${i === 0 ? 'web' : 'db'}`,
    );
    ctx = await f.context();
  });
  after(async () => {
    await f?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const TEMPLATE = '## per host\n% if host.labels.role == "web"\nlisten ${port};\n% else\nbind ${port + 1};\n% endif\nname ${host.name} (${host.os}, python ${host.python})\n';

  test('each host renders with its own name, labels and facts; Template.file writes once, then changes nothing', async () => {
    for (const [name, line] of [['h1', 'listen 80;'], ['h2', 'bind 81;']] as const) {
      const host = await connect(name, { context: ctx });
      try {
        const expected = `${line}\nname ${name} (Linux, python ${host.hello.py})\n`;
        assert.equal(await host.call(Template.render, TEMPLATE, { port: 80 }), expected);
        const target = `${root}/${name}.conf`;
        const first = await host.call(Template.file, target, TEMPLATE, { port: 80 }, { mode: 0o600 });
        assert.deepEqual([first.changed, first.created], [true, true]);
        assert.equal(readFileSync(target, 'utf8'), expected);
        assert.deepEqual(await host.call(Template.file, target, TEMPLATE, { port: 80 }, { mode: 0o600 }), { changed: false, created: false, diff: '' });
        await assert.rejects(host.call(Template.file, '/etc/remux-template-test.conf', TEMPLATE, { port: 80 }), DeniedError);
      } finally {
        await host.close();
      }
    }
    const records = ctx.audit.list().filter((a) => a.begin.command?.startsWith('Template.'));
    assert.deepEqual(
      records.map((a) => [a.begin.host, a.begin.command, a.begin.decision]),
      ['h1', 'h2'].flatMap((n) => [[n, 'Template.render', 'allow'], [n, 'Template.file', 'allow'], [n, 'Template.file', 'allow'], [n, 'Template.file', 'deny']]),
    );
  });

  test('remux rpc Template.render|file: a local template file and --var/--vars-file; file is idempotent; a template error names FILE:LINE (2); a refused write is 77, nothing written', async () => {
    // The template and variables are files of the caller's working directory, named as given.
    const local = mkdtempSync(join(tmpdir(), 'remux-tmpl-cli-'));
    try {
      writeFileSync(join(local, 'site.tmpl'), '% if host.labels.role == "web"\nlisten ${port};\n% else\nbind ${port};\n% endif\nname ${host.name}\n');
      writeFileSync(join(local, 'vars.yaml'), 'port: 8080\n');
      writeFileSync(join(local, 'bad.tmpl'), 'ok\n\nlisten ${nope};\n');
      const rpc = (...args: string[]) => remux(['rpc', ...args], { env: f.env(), cwd: local });

      const one = await rpc('h1', 'Template.render', 'site.tmpl', '--var', 'port=443');
      assert.equal(one.code, 0, one.stderr);
      assert.equal(one.stdout, 'listen 443;\nname h1\n');
      const fan = await rpc('env=prod', 'Template.render', 'site.tmpl', '--vars-file', 'vars.yaml');
      assert.equal(fan.code, 0, fan.stderr);
      assert.deepEqual(fan.stdout.split('\n').filter(Boolean).sort(), ['h1: listen 8080;', 'h1: name h1', 'h2: bind 8080;', 'h2: name h2']);
      assert.match(fan.stderr, /^2 hosts: 0 changed, 2 ok, 0 failed, 0 denied, 0 unreachable\n$/);

      // The fleet shares this machine's files: one host of the selector writes the file.
      const target = `${root}/cli.conf`;
      const created = await rpc('role=web', 'Template.file', target, 'site.tmpl', '--vars-file', 'vars.yaml', '--mode', '0640');
      assert.equal(created.code, 0, created.stderr);
      assert.equal(created.stdout, `h1: created\nh1: --- /dev/null\nh1: +++ ${target}\nh1: @@ -0,0 +1,2 @@\nh1: +listen 8080;\nh1: +name h1\n`);
      assert.match(created.stderr, /^1 host: 1 changed, 1 ok, 0 failed, 0 denied, 0 unreachable\n$/);
      assert.equal(readFileSync(target, 'utf8'), 'listen 8080;\nname h1\n');
      assert.equal(statSync(target).mode & 0o777, 0o640);
      const again = await rpc('h1', 'Template.file', target, 'site.tmpl', '--vars-file', 'vars.yaml', '--mode', '0640', '--json');
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(JSON.parse(again.stdout), { host: 'h1', ok: true, value: { changed: false, created: false, diff: '' } });
      const unchanged = await rpc('h1', 'Template.file', target, 'site.tmpl', '--vars-file', 'vars.yaml');
      assert.deepEqual([unchanged.code, unchanged.stdout], [0, 'unchanged\n']);

      // A file over 1 MiB: its diff is left out, and the output says so.
      writeFileSync(join(local, 'big.tmpl'), `port \${port}\n${`${'x'.repeat(1023)}\n`.repeat(1536)}`);
      const big = await rpc('h1', 'Template.file', `${root}/big.conf`, 'big.tmpl', '--var', 'port=80');
      assert.deepEqual([big.code, big.stdout], [0, 'created\n(diff left out: the file is 1.5 MiB, over the 1 MiB a diff is made for)\n'], big.stderr);

      const bad = await rpc('h1', 'Template.file', `${root}/bad.conf`, 'bad.tmpl');
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^remux: TemplateError: bad\.tmpl:3: undefined variable nope\n$/);
      assert.equal(existsSync(`${root}/bad.conf`), false);

      const denied = await rpc('env=prod', 'Template.file', '/etc/remux-template-cli.conf', 'site.tmpl', '--var', 'port=1');
      assert.equal(denied.code, 77);
      assert.match(denied.stderr, /^h1: write_file \/etc\/remux-template-cli\.conf: no rule of policy rt allows it$/m);
      assert.match(denied.stderr, /^2 hosts: 0 changed, 0 ok, 0 failed, 2 denied, 0 unreachable$/m);
      assert.equal(existsSync('/etc/remux-template-cli.conf'), false);

      // Bad input is named before anything is sent: a missing file, a bad --var, --mode on a method without one.
      const usage: Array<[string[], RegExp]> = [
        [['h1', 'Template.render', 'missing.tmpl'], /^remux: cannot read missing\.tmpl: no such file\n$/],
        [['h1', 'Template.render', 'site.tmpl', '--var', 'port'], /^remux: --var port: expected KEY=VALUE\n$/],
        [['h1', 'Template.render', 'site.tmpl', '--mode', '0644'], /^remux: Template\.render takes no --mode \(it is the mode of what FileSystem\.writeText, lineInFile, ensureDirectory and Template\.file write, or a custom tool's mode option\)\n$/],
        [['h1', 'Template.file', target], /^remux: Template\.file needs its template: remux rpc HOST Template\.file PATH TEMPLATE /],
      ];
      for (const [args, expected] of usage) {
        const r = await rpc(...args);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, expected);
      }
    } finally {
      rmSync(local, { recursive: true, force: true });
    }
  });
});
