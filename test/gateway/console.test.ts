// The console's login page in the system Chromium against a real daemon: the CSP lets our own bundle
// run (and nothing reports a violation), the session cookie is HttpOnly/Secure/Strict, a scoped
// principal sees only its hosts, logout ends the session.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startBrowserDaemon, type BrowserDaemon } from '../support/browser-daemon.js';

let d: BrowserDaemon;

before(async () => {
  d = await startBrowserDaemon(
    {
      'policies.yaml': 'policies:\n  read_only:\n    capabilities:\n      - { operation: write_stdout, resource: null }\n',
      'hosts.yaml': 'hosts:\n  web1: { address: 192.0.2.1, labels: { env: prod } }\n  db1: { address: 192.0.2.2, labels: { env: dev } }\n',
    },
    { name: 'viewer', flags: ['--hosts', 'env=prod'] },
  );
});
after(async () => {
  await d?.stop();
});

test('log in with a token, see the scoped hosts, log out', async () => {
  // The certificate is the daemon's self-signed one; the API tests check it properly.
  const context = await d.browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())));
  page.on('pageerror', (e) => problems.push(e.message));

  await page.goto(d.url);
  await page.locator('#token').fill('rmx_not-a-token');
  await page.locator('#login button[type=submit]').click();
  await page.locator('#login-error', { hasText: 'the token matches no principal' }).waitFor();

  await page.locator('#token').fill(d.token);
  await page.locator('#login button[type=submit]').click();
  await page.locator('#who', { hasText: 'viewer' }).waitFor();
  await page.locator('#page tbody tr').first().waitFor();
  assert.deepEqual(await page.locator('#page tbody tr td:first-child').allTextContents(), ['web1']);
  const [cookie] = await context.cookies();
  assert.deepEqual([cookie?.name, cookie?.httpOnly, cookie?.secure, cookie?.sameSite], ['__Host-remux_session', true, true, 'Strict']);

  await page.reload();
  await page.locator('#who', { hasText: 'viewer' }).waitFor();
  await page.locator('#logout').click();
  await page.locator('#login').waitFor();
  assert.deepEqual(await context.cookies(), []);
  const me = await page.evaluate(async () => (await fetch('/api/me')).status);
  assert.equal(me, 401);
  // The failed login's 401 is logged by Chromium itself; anything else (a CSP refusal, a script error) is ours.
  assert.deepEqual(problems.filter((p) => !/status of 401/.test(p)), []);
  await context.close();
});
