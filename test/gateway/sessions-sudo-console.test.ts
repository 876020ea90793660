// "sudo refused" and "no sessions" told apart in the console's Sessions page, in the system Chromium:
// a real SSH host (test/fleet) with its own sudoers, where root may run tmux as nobody but nothing as
// daemon. root and nobody have no sessions; daemon's row says sudo refused, with sudo's own words, in the
// refusal's style, and cannot be chosen to create a session in.
import assert from 'node:assert/strict';
import { userInfo } from 'node:os';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFleet, type Fleet } from '../fleet/fleet.js';
import { startBrowserDaemon, type BrowserDaemon } from '../support/browser-daemon.js';

const isRoot = process.getuid?.() === 0;
const NOBODY_UID = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());

describe('sudo refused in the sessions console', { timeout: 90_000, skip: isRoot ? false : 'needs root (a sudoers of its own on a fleet host)' }, () => {
  let fleet: Fleet;
  let d: BrowserDaemon;
  // nobody's tmux directory is the machine's /tmp/tmux-65534: a name of our own never meets another server.
  const socketName = `rmx-test-${randomBytes(4).toString('hex')}`;

  before(async () => {
    fleet = await startFleet({ count: 1, sudoers: { h1: 'Defaults env_reset\nroot ALL=(nobody) NOPASSWD: /usr/bin/tmux\n' } });
    const h1 = fleet.hosts[0]!;
    d = await startBrowserDaemon(
      {
        'hosts.yaml': `hosts:\n  h1:\n    address: ${h1.address}\n    port: ${h1.port}\n    user: ${h1.user}\n    identity: ${h1.identityFile}\n    tmux_socket: ${socketName}\n    tmux_users: [root, nobody, daemon]\n`,
        'config.yaml': `ssh:\n  known_hosts: ${fleet.knownHostsFile}\n`,
        'policies.yaml': 'policies:\n  none:\n    capabilities: []\n',
      },
      { name: 'boss', flags: ['--admin'] },
    );
  });
  after(async () => {
    await d?.stop();
    await fleet?.stop();
    rmSync(join('/tmp', `tmux-${NOBODY_UID}`, socketName), { force: true });
  });

  test('each tmux user of the host shows its own state: no sessions, or sudo refused', async () => {
    const context = await d.browser.newContext({ ignoreHTTPSErrors: true });
    const problems: string[] = [];
    const page = await context.newPage();
    page.on('console', (m) => void (m.type() === 'error' && !/status of 401/.test(m.text()) && problems.push(m.text())));
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${d.url}#/sessions`);
    await page.locator('#token').fill(d.token);
    await page.locator('#login button[type=submit]').click();
    const host = page.locator('section.host[data-host=h1]');
    const user = (name: string) => host.locator(`.user[data-user=${name}]`);
    await user('daemon').waitFor();

    const refused = user('daemon').locator('.state');
    assert.match((await refused.textContent())!, /^sudo refused: .*not allowed to execute .* as daemon/);
    assert.equal(await refused.getAttribute('class'), 'state sudo_refused');
    for (const name of ['root', 'nobody']) {
      const state = user(name).locator('.state');
      assert.equal(await state.textContent(), 'no sessions, no tmux server running', name);
      assert.equal(await state.getAttribute('class'), 'state no_server', name);
    }
    // Told apart at a glance too: the refusal is in the error colour, "no sessions" is not.
    type Styled = { getComputedStyle(e: unknown): { color: string } };
    const colour = (name: string): Promise<string> => user(name).locator('.state').evaluate((e) => (globalThis as unknown as Styled).getComputedStyle(e).color);
    assert.notEqual(await colour('daemon'), await colour('root'));
    assert.equal(await user('daemon').locator('table').count(), 0);
    // Sessions can be created on h1 as root or nobody, never as the user sudo refuses (and on this machine).
    assert.deepEqual(await page.locator('select[name=where] option').allTextContents(), [`${userInfo().username}@localhost`, 'root@h1', 'nobody@h1']);
    assert.deepEqual(problems, []);
    await context.close();
  });
});
