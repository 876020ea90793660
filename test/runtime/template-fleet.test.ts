// Templates rendered on real SSH hosts (the test fleet's sshd): each host renders the same template
// with its own inventory name and labels and its own facts, Template.file writes per host and is
// idempotent, and a write the policy does not allow is refused on every host.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type GatewayContext } from '../../src/core/context.js';
import { connect, DeniedError, Template } from '../../src/runtime/index.js';
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
});
