// Browser sessions of the web console across a daemon's restart, against real daemons, real tmux and the
// system Chromium: a graceful stop hands them to the next daemon (run/browser-sessions.json, 0600, the
// cookie's SHA-256 only), so a page logged in before `remux daemon restart` goes on: its requests, its
// CSRF token, its terminal, which says "reconnecting…" and attaches again by itself. A SIGKILLed daemon
// hands nothing over; nor does a file that is a link, malformed, or another REMUX_HOME's; a session of a
// principal whose token was rotated (or who was removed) while no daemon ran is refused. The login
// lockouts go across with them: a restart gives a locked-out address no new guesses, nor more time locked out.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ADMIN_SCOPE, hashToken, type PrincipalEntry, type Principals } from '../../src/config/principals.js';
import { processAlive } from '../../src/core/process.js';
import { LoginGuard, SessionStore, type GuardOptions, type HandedLogins, type HandedSession } from '../../src/gateway/http/auth.js';
import { launchChromium, loggedIn } from '../support/browser.js';
import { remux } from '../support/cli.js';
import { startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';
import { client } from '../support/https.js';
import { until } from '../support/until.js';
import { freePort } from '../support/free-port.js';

/** A daemon on a port of its own, which a restart serves again. */
async function fixedPortDaemon(principals: Record<string, string[]>, config = ''): Promise<ConsoleDaemon> {
  return startConsoleDaemon(principals, config, {}, '', `127.0.0.1:${await freePort()}`);
}

/** `remux daemon ARGS` in the daemon's environment. */
async function daemon(d: ConsoleDaemon, ...args: string[]): Promise<void> {
  const r = await remux(['daemon', ...args], { env: d.env });
  assert.equal(r.code, 0, `daemon ${args.join(' ')}: ${r.stderr}`);
}

/** Started again on its port unless it runs (a test before that failed between a stop and a start). */
const running = (d: ConsoleDaemon): Promise<void> => daemon(d, 'start', '--listen', new URL(d.url).host);

const handoverFile = (d: ConsoleDaemon): string => join(d.home, 'run', 'browser-sessions.json');
const daemonLog = (d: ConsoleDaemon): string => readFileSync(join(d.home, 'run', 'daemon.log'), 'utf8');

/** A crash: the daemon gets no chance to hand anything over. */
async function killDaemon(d: ConsoleDaemon): Promise<void> {
  const pid = Number(readFileSync(join(d.home, 'run', 'remux.pid'), 'utf8'));
  process.kill(pid, 'SIGKILL');
  await until('the daemon is gone', () => !processAlive(pid));
}

/** A browser's login, as the console's page makes it: the session cookie and its CSRF token. */
async function login(d: ConsoleDaemon, name: string): Promise<{ cookie: string; csrf: string }> {
  const r = await client(d.url, d.ca).request('POST', '/api/login', { headers: { origin: d.origin }, body: { token: d.tokens[name] } });
  assert.equal(r.status, 200, r.text);
  const setCookie = ([] as string[]).concat(r.headers['set-cookie'] ?? []).join('; ');
  const cookie = /__Host-remux_session=([^;]+)/.exec(setCookie)![1]!;
  return { cookie, csrf: r.json<{ csrfToken: string }>().csrfToken };
}

/** GET /api/me with the cookie: its status. */
async function me(d: ConsoleDaemon, cookie: string): Promise<number> {
  return (await client(d.url, d.ca).request('GET', '/api/me', { headers: { cookie: `__Host-remux_session=${cookie}` } })).status;
}

describe('browser sessions across a daemon restart, in a browser', { timeout: 180_000 }, () => {
  let d: ConsoleDaemon;
  let browser: Browser;
  const problems: string[] = [];

  before(async () => {
    [d, browser] = await Promise.all([fixedPortDaemon({ boss: ['--admin'] }), launchChromium()]);
  });
  after(async () => {
    await browser?.close();
    await d?.stop();
  });

  /** Until `expression` is true in the page (waitForFunction polls with eval, which the console's CSP refuses). */
  const inPage = async (page: Page, expression: string, ms = 3000): Promise<void> => {
    for (const deadline = Date.now() + ms; !(await page.evaluate(expression)); await sleep(25)) {
      assert.ok(Date.now() < deadline, `within ${ms} ms: ${expression}`);
    }
  };
  const pane = (name: string): string => d.tmux('capture-pane', '-p', '-t', `=${name}:`);

  for (const [device, viewport] of [
    ['desktop', { width: 1280, height: 800 }],
    ['phone', { width: 390, height: 844 }],
  ] as const) {
    test(`on a ${device}: after \`remux daemon restart\` the page goes on, its terminal reconnecting by itself`, async () => {
      const session = `kept-${device}`;
      d.tmux('new-session', '-d', '-s', session, 'cat');
      const { context, page } = await loggedIn(browser, { url: d.url, token: d.tokens.boss!, who: 'boss', problems }, viewport);
      await page.goto(`${d.url}#/terminal?host=box&name=${session}`);
      await page.locator('.term-status', { hasText: /^attached/ }).waitFor();
      // What the page says while the daemon is away.
      await page.evaluate(`(() => {
        const status = document.querySelector('.term-status');
        window.saidWhileAway = [];
        new MutationObserver(() => window.saidWhileAway.push(status.textContent)).observe(status, { childList: true, characterData: true, subtree: true });
      })()`);

      await daemon(d, 'restart');
      await page.locator('.term-status', { hasText: /^attached/ }).waitFor({ timeout: 20_000 });
      const said = (await page.evaluate('window.saidWhileAway')) as string[];
      assert.ok(said.includes('reconnecting…'), `said while the daemon was away: ${JSON.stringify(said)}`);
      assert.equal(await page.locator('#login').isHidden(), true, 'no login asked for');
      await page.screenshot({ path: `/tmp/console-restart-${device}.png` });

      // The terminal is the session's again: typed keys reach cat, its echo comes back.
      await page.locator('.xterm-helper-textarea').focus();
      await page.keyboard.type(`after-restart-${device}`);
      await page.keyboard.press('Enter');
      await until('the typed line reached the session', () => new RegExp(`after-restart-${device}\\nafter-restart-${device}`).test(pane(session)));
      await page.locator('.xterm-rows', { hasText: new RegExp(`after-restart-${device}[^]*after-restart-${device}`) }).waitFor();

      // The same page's requests: a read, and a state change with the CSRF token it was given before the restart.
      await page.goto(`${d.url}#/sessions`);
      await page.getByLabel('host and user').selectOption({ label: `${d.me}@box` });
      await page.getByLabel('session name').fill(`made-${device}`);
      await page.getByRole('button', { name: 'Create' }).click();
      await page.locator(`tr[data-session=made-${device}]`).waitFor();
      assert.equal(d.hasSession(`made-${device}`), true);
      await inPage(page, `document.querySelector('#who').textContent === 'boss'`);
      // Chromium logs the page's attempts while the daemon stops and none listens.
      assert.deepEqual(problems.filter((p) => !/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|WebSocket connection to .* failed/.test(p)), []);
      await context.close();
      d.tmux('kill-session', '-t', `=${session}`);
      d.tmux('kill-session', '-t', `=made-${device}`);
    });
  }

  test('after a SIGKILLed daemon the page (a phone\'s) asks for the token again, and attaches once given it', async () => {
    d.tmux('new-session', '-d', '-s', 'crashed', 'cat');
    const { context, page } = await loggedIn(browser, { url: d.url, token: d.tokens.boss!, who: 'boss', problems }, { width: 390, height: 844 });
    await page.goto(`${d.url}#/terminal?host=box&name=crashed`);
    await page.locator('.term-status', { hasText: /^attached/ }).waitFor();
    await killDaemon(d);
    await page.locator('.term-status', { hasText: 'reconnecting…' }).waitFor();
    await page.screenshot({ path: '/tmp/console-reconnecting-phone.png' });
    await running(d);
    await page.locator('#login-error', { hasText: 'log in again' }).waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('#login').isVisible(), true);
    await page.screenshot({ path: '/tmp/console-logged-out-phone.png' });
    await page.locator('#token').fill(d.tokens.boss!);
    await page.locator('#login button[type=submit]').click();
    await page.locator('.term-status', { hasText: /^attached/ }).waitFor();
    assert.match(page.url(), /#\/terminal\?host=box&name=crashed$/);
    await context.close();
    d.tmux('kill-session', '-t', '=crashed');
  });
});

describe('browser sessions handed over by a stopping daemon', { timeout: 120_000 }, () => {
  let d: ConsoleDaemon;

  before(async () => {
    d = await fixedPortDaemon({ boss: ['--admin'], ops: ['--hosts', 'box'], temp: ['--hosts', 'box'] });
  });
  after(async () => {
    await d?.stop();
  });

  test('a stop leaves them in a 0600 file under the cookie\'s SHA-256, never the cookie; the next start takes them back once', async () => {
    await running(d);
    const { cookie, csrf } = await login(d, 'boss');
    await daemon(d, 'stop');
    const file = handoverFile(d);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const text = readFileSync(file, 'utf8');
    assert.ok(!text.includes(cookie), 'the cookie is not in the file');
    assert.ok(text.includes(createHash('sha256').update(cookie).digest('hex')));
    await running(d);
    assert.equal(existsSync(file), false, 'taken once: removed');
    assert.equal(await me(d, cookie), 200);
    const made = await client(d.url, d.ca).request('POST', '/api/sessions', {
      headers: { cookie: `__Host-remux_session=${cookie}`, origin: d.origin, 'x-csrf-token': csrf },
      body: { host: 'box', user: d.me, name: 'posted', command: 'cat' },
    });
    assert.equal(made.status, 201, made.text);
    d.tmux('kill-session', '-t', '=posted');
    const wrong = await client(d.url, d.ca).request('POST', '/api/sessions', {
      headers: { cookie: `__Host-remux_session=${cookie}`, origin: d.origin, 'x-csrf-token': 'x'.repeat(43) },
      body: { host: 'box', user: d.me, name: 'refused', command: 'cat' },
    });
    assert.equal(wrong.status, 403, 'the CSRF check still holds');
    await daemon(d, 'restart');
    assert.equal(await me(d, cookie), 200, 'and again after a restart');
  });

  test('a session whose principal\'s token was rotated, or who was removed, while no daemon ran is refused; the others go on', async () => {
    await running(d);
    const [boss, ops, temp] = [await login(d, 'boss'), await login(d, 'ops'), await login(d, 'temp')];
    await daemon(d, 'stop');
    assert.equal((await remux(['principal', 'rotate', 'ops'], { env: d.env })).code, 0);
    assert.equal((await remux(['principal', 'rm', 'temp'], { env: d.env })).code, 0);
    await running(d);
    assert.equal(await me(d, boss.cookie), 200);
    assert.equal(await me(d, ops.cookie), 401);
    assert.equal(await me(d, temp.cookie), 401);
    assert.match(daemonLog(d), /browser sessions: took back \d+ of the \d+ the daemon before left \(0 expired, 2 of a principal removed or a token rotated since/);
  });

  for (const [what, spoil, logged] of [
    ['malformed', (file: string) => writeFileSync(file, '{"format":1,"sessions":[', { mode: 0o600 }), /is not what a stopping daemon writes/],
    ['another REMUX_HOME\'s', (file: string) => rewrite(file, (f) => ({ ...f, home: '/elsewhere' })), /was left by the daemon of another REMUX_HOME \("\/elsewhere"\)/],
    ['of another format', (file: string) => rewrite(file, (f) => ({ ...f, format: 3 })), /is of another remux's format \(3, this one reads 1 and 2\)/],
    ['of format 2 without its login lockouts', (file: string) => rewrite(file, ({ logins: _, ...f }) => f), /is not what a stopping daemon writes/],
    ['readable by others', (file: string) => chmodSync(file, 0o644), /may be read or written by others \(mode 644\)/],
    [
      'a symbolic link',
      (file: string) => {
        renameSync(file, `${file}.real`);
        symlinkSync(`${file}.real`, file);
      },
      /is a symbolic link, not followed/,
    ],
  ] as const) {
    test(`a hand-over file that is ${what} is ignored and logged; the daemon starts`, async () => {
      await running(d);
      const { cookie } = await login(d, 'boss');
      await daemon(d, 'stop');
      const file = handoverFile(d);
      spoil(file);
      await running(d);
      assert.match(daemonLog(d), logged);
      assert.equal(lstatSync(file, { throwIfNoEntry: false }), undefined, 'removed (a link, not what it points to)');
      assert.equal(await me(d, cookie), 401);
    });
  }

  test('a file of format 1, as the remux before wrote it (sessions only), is taken back', async () => {
    await running(d);
    const { cookie } = await login(d, 'boss');
    await daemon(d, 'stop');
    rewrite(handoverFile(d), ({ logins: _, ...f }) => ({ ...f, format: 1 }));
    await running(d);
    assert.equal(await me(d, cookie), 200);
  });
});

describe('login lockouts handed over by a stopping daemon', { timeout: 120_000 }, () => {
  let d: ConsoleDaemon;

  before(async () => {
    // This test is the proxy in front (on loopback): X-Forwarded-For names the client, so each test guesses from an address of its own.
    d = await fixedPortDaemon({ boss: ['--admin'], late: ['--hosts', 'box'] }, 'http:\n  trusted_proxies: [127.0.0.1]\n');
  });
  after(async () => {
    await d?.stop();
  });

  const loginFrom = (address: string, token: string): ReturnType<ReturnType<typeof client>['request']> =>
    client(d.url, d.ca).request('POST', '/api/login', { headers: { origin: d.origin, 'x-forwarded-for': address }, body: { token } });
  const guess = async (address: string, n: number): Promise<void> => {
    for (let i = 0; i < n; i++) assert.equal((await loginFrom(address, `rmx_guess${i}`)).status, 401);
  };

  test('failed token checks short of a lockout go on counting after a stop and start (a daemon with no browser session leaves them too)', async () => {
    await running(d);
    await guess('203.0.113.8', 3);
    await daemon(d, 'stop');
    const file = handoverFile(d);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(readFileSync(file, 'utf8'), /"address":"203\.0\.113\.8","count":3/);
    await running(d);
    await guess('203.0.113.8', 2);
    const r = await loginFrom('203.0.113.8', d.tokens.late!);
    assert.equal(r.status, 429, `5 failures in all lock the address out, the right token included: ${r.text}`);
    assert.ok(Number(r.headers['retry-after']) > 800);
  });

  test('an address locked out before `remux daemon restart` still is, for the time it had left and no longer; a token accepted there before still passes', async () => {
    await running(d);
    assert.equal((await loginFrom('203.0.113.7', d.tokens.boss!)).status, 200);
    await guess('203.0.113.7', 5);
    const refused = await loginFrom('203.0.113.7', d.tokens.late!);
    assert.equal(refused.status, 429, refused.text);
    const left = Number(refused.headers['retry-after']);
    const lockedAt = Date.now();
    await daemon(d, 'restart');
    const r = await loginFrom('203.0.113.7', d.tokens.late!);
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json().error, 'locked_out');
    const now = Number(r.headers['retry-after']);
    const passed = Math.ceil((Date.now() - lockedAt) / 1000);
    assert.ok(now <= left && now >= left - passed - 1, `${left} s left before the restart, ${now} s after it, ${passed} s later`);
    assert.match(r.json<{ message: string }>().message, new RegExp(`try again in ${now} s`));
    assert.equal((await loginFrom('203.0.113.7', d.tokens.boss!)).status, 200, 'a token accepted from there before passes the lockout');
    assert.match(daemonLog(d), /login lockouts: took back [1-9]\d* locked-out addresses, \d+ with failed token checks short of a lockout and the tokens known at 1 /);
  });
});

describe('LoginGuard.handOver and takeBack', () => {
  const opts: GuardOptions = { slowAfter: 1, delayStepMs: 1, lockAfter: 3, lockMs: 60_000, maxAddresses: 100, knownMs: 3600_000, knownPerAddress: 8, maxKnownAddresses: 100 };
  const fail = (g: LoginGuard, address: string, i: number): void => {
    const a = g.attempt(address, `guess${i}`);
    assert.equal(a.locked, false);
    if (!a.locked) a.failed();
  };
  /** How long `address` is locked out for a token not known there, or null (which counts as a failure). */
  const lockedFor = (g: LoginGuard, address: string, token = 'newcomer'): number | null => {
    const a = g.attempt(address, token);
    return a.locked ? a.retryAfterMs : null;
  };
  /** As through the file. */
  const through = (left: HandedLogins): HandedLogins => JSON.parse(JSON.stringify(left)) as HandedLogins;

  test('a lockout, a streak of failures and the tokens known at an address go on in the next guard', () => {
    const a = new LoginGuard(opts);
    a.attempt('203.0.113.7', 'right');
    const right = a.attempt('203.0.113.7', 'right');
    if (!right.locked) right.succeeded();
    for (let i = 0; i < 3; i++) fail(a, '203.0.113.7', i);
    fail(a, '198.51.100.1', 0);
    const left = lockedFor(a, '203.0.113.7')!;
    const b = new LoginGuard(opts);
    assert.deepEqual(b.takeBack(through(a.handOver()), Date.now()), { locked: 1, streaks: 1, knownAt: 1, expired: 0 });
    const now = lockedFor(b, '203.0.113.7')!;
    assert.ok(now <= left && now > left - 1000, `${left} ms left, ${now} ms in the next`);
    assert.equal(lockedFor(b, '203.0.113.7', 'right'), null, 'the known token passes');
    fail(b, '198.51.100.1', 1);
    fail(b, '198.51.100.1', 2);
    assert.ok(lockedFor(b, '198.51.100.1')! > 59_000, 'the streak went on: two more made three');
  });

  test('what ran out is dropped: a lockout served, a streak or a known token too old', () => {
    const now = Date.now();
    const b = new LoginGuard(opts);
    const counts = b.takeBack(
      {
        failures: [
          { address: 'served', count: 3, lockedUntil: now - 1, lastAt: now - 60_001 },
          { address: 'old', count: 2, lockedUntil: 0, lastAt: now - 60_001 },
        ],
        known: [{ address: 'old', tokens: [{ sha256: hashToken('right'), at: now - 3600_001 }] }],
      },
      now,
    );
    assert.deepEqual(counts, { locked: 0, streaks: 0, knownAt: 0, expired: 2 });
    assert.deepEqual(b.handOver(), { failures: [], known: [] });
  });

  test('a clock set back since the hand-over gives a lockout the time it had left, no less and no more; none lasts longer than lockMs', () => {
    const now = Date.now();
    const hour = 3600_000;
    const b = new LoginGuard(opts);
    // Written "an hour from now": the clock went back an hour. One lockout had 10 s left then, one (written a moment ago) claims 10 hours.
    b.takeBack({ failures: [{ address: 'back', count: 3, lockedUntil: now + hour + 10_000, lastAt: now + hour - 50_000 }], known: [] }, now + hour);
    b.takeBack({ failures: [{ address: 'far', count: 3, lockedUntil: now + 10 * hour, lastAt: now }], known: [] }, now);
    const back = lockedFor(b, 'back')!;
    assert.ok(back > 9_000 && back <= 10_000, `10 s left, not 0 nor 1 h 10 s: ${back} ms`);
    assert.ok(lockedFor(b, 'far')! <= 60_000, 'at most a new lockout\'s minute');
  });

  test('keeps the guard\'s limits, the most recent first; counts no more failures than lock an address out', () => {
    const b = new LoginGuard({ ...opts, maxAddresses: 2, maxKnownAddresses: 1, knownPerAddress: 1 });
    const now = Date.now();
    const streak = (address: string, count = 1): HandedLogins['failures'][number] => ({ address, count, lockedUntil: 0, lastAt: now });
    const known = (address: string, ...tokens: string[]): HandedLogins['known'][number] => ({ address, tokens: tokens.map((t) => ({ sha256: hashToken(t), at: now })) });
    assert.deepEqual(b.takeBack({ failures: [streak('a'), streak('b'), streak('c', 1e9)], known: [known('a', 'x'), known('b', 'y', 'z')] }, now), { locked: 0, streaks: 2, knownAt: 1, expired: 0 });
    assert.deepEqual(
      b.handOver(),
      { failures: [{ address: 'b', count: 1, lockedUntil: 0, lastAt: now }, { address: 'c', count: 3, lockedUntil: 0, lastAt: now }], known: [known('b', 'z')] },
    );
  });
});

function rewrite(file: string, change: (f: Record<string, unknown>) => Record<string, unknown>): void {
  writeFileSync(file, JSON.stringify(change(JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>)), { mode: 0o600 });
}

describe('SessionStore.takeBack', () => {
  const entry = (name: string, tokenSha256 = name): PrincipalEntry => ({ name, tokenSha256, created: null, scope: ADMIN_SCOPE });
  const principals: Principals = { file: 'principals.yaml', entries: [entry('boss'), entry('ops')] };
  const handed = (principal: string, i: number, expiresAt: number): HandedSession => ({
    key: createHash('sha256').update(`${principal}${i}`).digest('hex'),
    principal,
    tokenSha256: principal,
    csrfToken: `csrf-${principal}-${i}`,
    expiresAt,
  });
  const cookieOf = (principal: string, i: number): string => `${principal}${i}`;

  test('keeps the limits, the newest of each principal first', () => {
    const store = new SessionStore(3600_000, { perPrincipal: 2, total: 3 });
    const soon = Date.now() + 60_000;
    const all = [handed('boss', 0, soon), handed('ops', 0, soon), handed('boss', 1, soon), handed('boss', 2, soon), handed('ops', 1, soon)];
    assert.deepEqual(store.takeBack(all, Date.now(), principals), { taken: 3, expired: 0, revoked: 0, overLimit: 2 });
    const kept = (p: string, i: number): boolean => store.find(cookieOf(p, i), principals) !== null;
    assert.deepEqual([kept('boss', 0), kept('boss', 1), kept('boss', 2), kept('ops', 0), kept('ops', 1)], [false, true, true, false, true]);
    assert.equal(store.find(cookieOf('boss', 2), principals)!.session.csrfToken, 'csrf-boss-2', 'its CSRF token as it was');
  });

  test('drops the expired and those of a removed principal or another token', () => {
    const store = new SessionStore(3600_000);
    const soon = Date.now() + 60_000;
    const now: Principals = { file: 'principals.yaml', entries: [entry('boss'), entry('ops', 'rotated')] };
    const counts = store.takeBack([handed('boss', 0, Date.now() - 1), handed('boss', 1, soon), handed('ops', 0, soon), handed('gone', 0, soon)], Date.now(), now);
    assert.deepEqual(counts, { taken: 1, expired: 1, revoked: 2, overLimit: 0 });
  });

  test('a clock set back since the hand-over gives a session only the time it had left, and none more than a new one\'s', () => {
    const store = new SessionStore(3600_000);
    const now = Date.now();
    // Written "an hour from now": the clock went back an hour. One had 10 s left then, one 2 h (more than this daemon's 1 h).
    store.takeBack([handed('boss', 0, now + 3600_000 + 10_000), handed('boss', 1, now + 3600_000 + 7200_000)], now + 3600_000, principals);
    // From the clock's now after takeBack(), which counted from its own.
    const left = (i: number): number => store.find(cookieOf('boss', i), principals)!.session.expiresAt - Date.now();
    assert.ok(left(0) > 9_000 && left(0) <= 10_000, `10 s left, not 1 h 10 s: ${left(0)} ms`);
    assert.ok(left(1) <= 3600_000 + 100, `at most a new session's hour: ${left(1)} ms`);
    assert.deepEqual(store.takeBack([handed('boss', 2, now + 60_000)], now + 3600_000, principals), { taken: 0, expired: 1, revoked: 0, overLimit: 0 }, 'one that had expired by the clock it was written with');
  });
});
