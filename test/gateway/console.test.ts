// The console's login page in the system Chromium against a real daemon: the CSP lets our own bundle
// run (and nothing reports a violation), the session cookie is HttpOnly/Secure/Strict, a scoped
// principal sees only its hosts, logout ends the session.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { remux, tempHome } from '../support/cli.js';

const h = tempHome();
let browser: Browser;
let url = '';
let token = '';

before(async () => {
  writeFileSync(join(h.home, 'policies.yaml'), 'policies:\n  read_only:\n    capabilities:\n      - { operation: write_stdout, resource: null }\n');
  writeFileSync(join(h.home, 'hosts.yaml'), 'hosts:\n  web1: { address: 192.0.2.1, labels: { env: prod } }\n  db1: { address: 192.0.2.2, labels: { env: dev } }\n');
  const added = await remux(['principal', 'add', 'viewer', '--hosts', 'env=prod', '--json'], { env: h.env });
  token = (JSON.parse(added.stdout) as { token: string }).token;
  const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
  assert.equal(started.code, 0, started.stderr);
  url = /web console and API: (\S+)/.exec(started.stdout)![1]!;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
});
after(async () => {
  await browser?.close();
  await remux(['daemon', 'stop'], { env: h.env });
  h.remove();
});

test('log in with a token, see the scoped hosts, log out', async () => {
  // The certificate is the daemon's self-signed one; the API tests check it properly.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())));
  page.on('pageerror', (e) => problems.push(e.message));

  await page.goto(url);
  await page.locator('#token').fill('rmx_not-a-token');
  await page.locator('#login button[type=submit]').click();
  await page.locator('#login-error', { hasText: 'the token matches no principal' }).waitFor();

  await page.locator('#token').fill(token);
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
