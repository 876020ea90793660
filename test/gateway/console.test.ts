// The console's login page in the system Chromium against a real daemon: the CSP lets our own bundle
// run (and nothing reports a violation), the session cookie is HttpOnly/Secure/Strict, a scoped
// principal sees only its hosts, logout ends the session; the hosts page tells what `remux hosts list`
// does (address, last error, a sandbox warning).
import assert from 'node:assert/strict';
import { userInfo } from 'node:os';
import { after, before, test } from 'node:test';
import { loggedIn } from '../support/browser.js';
import { startBrowserDaemon, type BrowserDaemon } from '../support/browser-daemon.js';
import { remux } from '../support/cli.js';

let d: BrowserDaemon;

before(async () => {
  d = await startBrowserDaemon(
    {
      'policies.yaml': 'policies:\n  read_only:\n    capabilities:\n      - { operation: write_stdout, resource: null }\n',
      'hosts.yaml': 'hosts:\n  web1: { address: 192.0.2.1, labels: { env: prod } }\n  db1: { address: 192.0.2.2, labels: { env: dev } }\n' +
        '  web2: { address: 127.0.0.1, port: 9, user: ops, identity: /nonexistent/key }\n',
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

test('the hosts page says where each host is, why one is not connected, and what its sandbox is warned about', async () => {
  const added = await remux(['principal', 'add', 'boss', '--admin', '--json'], { env: d.env });
  assert.equal(added.code, 0, added.stderr);
  const token = (JSON.parse(added.stdout) as { token: string }).token;
  // A connection refused at once leaves the daemon's pool a last error to tell.
  const failed = await remux(['client', 'run', 'web2', '--', 'true'], { env: d.env });
  assert.equal(failed.code, 255, failed.stderr);
  const problems: string[] = [];
  const { context, page } = await loggedIn(d.browser, { url: d.url, token, who: 'boss', problems });
  await page.locator('tr[data-host=web2]').waitFor();
  const hosts = (await page.evaluate(async () => (await fetch('/api/hosts')).json())) as Array<{ name: string; lastError: string | null; enforcement: { warning: string | null } }>;
  const row = async (name: string): Promise<string[]> => page.locator(`tr[data-host=${name}] td`).allInnerTexts();
  assert.deepEqual((await row('localhost')).slice(0, 2), ['localhost', '(this machine)']);
  assert.deepEqual((await row('web1')).slice(0, 3), ['web1', `${userInfo().username}@192.0.2.1`, 'env=prod']);
  const web2 = await row('web2');
  const lastError = hosts.find((h) => h.name === 'web2')!.lastError;
  assert.ok(lastError, 'the daemon has a last error for web2');
  assert.equal(web2[1], 'ops@127.0.0.1:9');
  assert.equal(web2[3], `no\n${lastError}`);
  // This machine's bubblewrap, when older than the fix of its known escape, is warned about as `hosts list` does (else nothing is said).
  const warning = hosts.find((h) => h.name === 'localhost')!.enforcement.warning;
  const enforcement = (await row('localhost'))[4]!;
  assert.equal(enforcement.split('\n')[1], warning ?? undefined, enforcement);
  assert.deepEqual(problems, []);
  await context.close();
});
