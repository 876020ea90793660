// The sessions dashboard and the browser terminal in the system Chromium against a real daemon and real
// tmux: log in, see sessions, create one with a command, attach, type, see the output, resize, watch
// read-only, kill behind the typed name, and on a phone-sized screen the key bar's Ctrl-C and a watch
// of a wide session shrunk to the width (turned sideways, to the height too).
import assert from 'node:assert/strict';
import { userInfo } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, loggedIn } from '../support/browser.js';
import { startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';

/** The page's clipboard, as seen from a function run in it. */
type Clip = { navigator: { clipboard: { readText(): Promise<string>; writeText(text: string): Promise<void> } } };

describe('the sessions console in a browser', { timeout: 180_000 }, () => {
  let d: ConsoleDaemon;
  let browser: Browser;
  const problems: string[] = [];

  before(async () => {
    [d, browser] = await Promise.all([
      startConsoleDaemon({ boss: ['--admin'], viewer: ['--hosts', 'box', '--users', userInfo().username, '--read-only'] }),
      launchChromium(),
    ]);
  });
  after(async () => {
    await browser?.close();
    await d?.stop();
    // Nothing the CSP refused, no script error (xterm's styles go through the CSSOM: web/inline-styles.ts).
    assert.deepEqual(problems, []);
  });

  const login = (viewport?: { width: number; height: number }): Promise<{ context: BrowserContext; page: Page }> =>
    loggedIn(browser, { url: d.url, token: d.tokens.boss!, who: 'boss', problems }, viewport);


  /** What the session's pane shows now, as tmux has it. */
  const pane = (name: string): string => d.tmux('capture-pane', '-p', '-t', `=${name}:`);
  const until = async (what: string, ok: () => boolean): Promise<void> => {
    for (let i = 0; i < 300 && !ok(); i++) await sleep(10);
    assert.ok(ok(), what);
  };
  /** Until `expression` is true in the page (waitForFunction polls with eval, which the console's CSP refuses). */
  const inPage = async (page: Page, expression: string, ms = 3000): Promise<void> => {
    for (const deadline = Date.now() + ms; !(await page.evaluate(expression)); await sleep(25)) {
      assert.ok(Date.now() < deadline, `within ${ms} ms: ${expression}`);
    }
  };

  test('create with a command, attach, type, resize, watch read-only, kill with the name typed', async () => {
    const { context, page } = await login();
    await page.goto(`${d.url}#/sessions`);
    await page.locator('section.host[data-host=box] .state.no_server').waitFor();
    // This machine is listed (and offered) first: create on the test's host.
    assert.equal(await page.locator('section.host').first().getAttribute('data-host'), 'localhost');
    await page.getByLabel('host and user').selectOption({ label: `${d.me}@box` });
    // A name remux would refuse is refused in the page, saying what a name may hold.
    await page.getByLabel('session name').fill('my session');
    assert.match(await page.getByLabel('session name').evaluate((i) => (i as unknown as { validationMessage: string }).validationMessage), /^A session name holds letters, digits, _ and - \(at most 64\)\.$/);
    await page.getByLabel('session name').fill('echoer');
    await page.getByLabel('startup command').fill('cat');
    await page.getByRole('button', { name: 'Create' }).click();
    const row = page.locator('tr[data-session=echoer]');
    await row.waitFor();
    assert.equal(d.hasSession('echoer'), true);

    await row.getByRole('link', { name: 'Attach' }).click();
    await page.locator('.term-status', { hasText: /attached · recording/ }).waitFor();
    await page.locator('.xterm-helper-textarea').focus();
    await page.keyboard.type('hello-from-chromium');
    await page.keyboard.press('Enter');
    // cat echoes the line: the tty's echo and cat's own output, both rendered by xterm.
    await page.locator('.xterm-rows', { hasText: /hello-from-chromium[^]*hello-from-chromium/ }).waitFor();
    assert.match(pane('echoer'), /hello-from-chromium\nhello-from-chromium/);

    // Copy a word selected in the terminal; paste into the session with the Paste button.
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: d.origin });
    // xterm's screen lies over its rows: double-click where the word is, as a user does.
    const word = (await page.locator('.xterm-rows div', { hasText: 'hello-from-chromium' }).first().boundingBox())!;
    await page.mouse.dblclick(word.x + 20, word.y + word.height / 2);
    await page.getByRole('button', { name: 'Copy' }).click();
    let copied = '';
    for (let i = 0; i < 100 && copied === ''; i++) copied = await page.evaluate(() => (globalThis as unknown as Clip).navigator.clipboard.readText());
    assert.match(copied, /^hello/);
    await page.evaluate(() => (globalThis as unknown as Clip).navigator.clipboard.writeText('pasted-in\n'));
    await page.getByRole('button', { name: 'Paste' }).click();
    await until('the paste reached the session', () => /pasted-in\npasted-in/.test(pane('echoer')));

    // Fit to the window: a smaller window is a smaller tmux client.
    const client = (): string => d.tmux('list-clients', '-t', '=echoer', '-F', '#{client_width}x#{client_height}').trim();
    const wide = client();
    await page.setViewportSize({ width: 700, height: 500 });
    await until(`the tmux client shrinks from ${wide}`, () => client() !== wide && Number(client().split('x')[0]) < Number(wide.split('x')[0]));

    // A second viewer, read-only: it sees what the first types and cannot type itself.
    const watcher = await context.newPage();
    watcher.on('pageerror', (e) => problems.push(e.message));
    await watcher.goto(`${d.url}#/terminal?host=box&user=${d.me}&name=echoer&readOnly=true`);
    await watcher.locator('.term-status', { hasText: 'read-only' }).waitFor();
    await watcher.locator('.xterm-helper-textarea').focus();
    await watcher.keyboard.type('watcher-typed');
    await watcher.keyboard.press('Enter');
    await page.locator('.xterm-helper-textarea').focus();
    await page.keyboard.type('second-line');
    await page.keyboard.press('Enter');
    await watcher.locator('.xterm-rows', { hasText: 'second-line' }).waitFor();
    assert.doesNotMatch(pane('echoer'), /watcher-typed/);
    assert.equal(await watcher.locator('.term-keys button[aria-label=Ctrl-C]').isDisabled(), true);

    // Leaving the page detaches; the session stays.
    await page.goto(`${d.url}#/sessions`);
    await watcher.close();
    await until('both viewers detached', () => d.tmux('list-clients', '-t', '=echoer').trim() === '');
    const kill = page.locator('tr[data-session=echoer]');
    await kill.getByRole('button', { name: 'Kill…' }).click();
    const confirm = kill.getByLabel('type echoer to confirm');
    await confirm.fill('echo');
    assert.equal(await kill.getByRole('button', { name: 'Kill', exact: true }).isDisabled(), true);
    await confirm.fill('echoer');
    await kill.getByRole('button', { name: 'Kill', exact: true }).click();
    await kill.waitFor({ state: 'detached' });
    assert.equal(d.hasSession('echoer'), false);
    await context.close();
  });

  test('a principal that may only watch is offered Watch alone (no Create, Attach or Kill); a name remux refuses gets no button; Create takes a policy', async () => {
    d.tmux('new-session', '-d', '-s', 'watched');
    d.tmux('new-session', '-d', '-s', 'sp ace'); // made outside remux, under a name remux never acts on
    try {
      const viewer = await loggedIn(browser, { url: d.url, token: d.tokens.viewer!, who: 'viewer', problems });
      await viewer.page.goto(`${d.url}#/sessions`);
      await viewer.page.getByRole('button', { name: 'Refresh' }).click();
      const row = viewer.page.locator('tr[data-session="watched"]');
      await row.waitFor();
      assert.deepEqual(await row.locator('.actions a, .actions button').allTextContents(), ['Watch']);
      assert.equal(await viewer.page.locator('form.create').isHidden(), true);
      await viewer.context.close();

      const { context, page } = await login();
      await page.goto(`${d.url}#/sessions`);
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.locator('tr[data-session="watched"]').waitFor();
      assert.deepEqual(await page.locator('tr[data-session="watched"] .actions').locator('a, button').allTextContents(), ['Attach', 'Watch', 'Kill…']);
      assert.equal(await page.locator('tr[data-session="sp ace"] .actions').locator('a, button').count(), 0);
      assert.match((await page.locator('tr[data-session="sp ace"] .actions').textContent()) ?? '', /not a name remux acts on/);
      // The startup command's policy is the form's to say: an unknown one is refused, naming the known ones.
      await page.getByLabel('host and user').selectOption({ label: `${d.me}@box` });
      await page.getByLabel('session name').fill('with-policy');
      await page.getByLabel('startup command').fill('cat');
      await page.getByLabel('policy', { exact: true }).fill('nosuch');
      // A refresh on its way meanwhile (held until the refusal shows) does not wipe the refusal when it lands.
      let release = (): void => {};
      const held = new Promise<void>((r) => (release = r));
      let refreshed = (): void => {};
      const landed = new Promise<void>((r) => (refreshed = r));
      await page.route('**/api/sessions?fresh=true', async (route) => {
        await held;
        await route.continue();
        refreshed();
      });
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.getByRole('button', { name: 'Create' }).click();
      await page.locator('p.error', { hasText: /unknown policy "nosuch"/ }).waitFor();
      release();
      await landed;
      await page.getByRole('button', { name: 'Refresh' }).and(page.locator(':enabled')).waitFor();
      assert.equal(await page.locator('p.error', { hasText: /unknown policy "nosuch"/ }).isVisible(), true, 'the refusal is still said');
      await page.unroute('**/api/sessions?fresh=true');
      assert.equal(d.hasSession('with-policy'), false);
      // That refusal (400) was asked for: it is not one of the page's problems.
      const refusal = problems.findIndex((p) => /status of 400/.test(p));
      assert.ok(refusal >= 0, 'the refused create shows as a 400');
      problems.splice(refusal, 1);
      await context.close();
    } finally {
      d.tmux('kill-session', '-t', '=watched');
      d.tmux('kill-session', '-t', '=sp ace');
    }
  });

  test('the terminal page says why it closed: no such session, too many attaches, session ended', async () => {
    const { context, page } = await login();
    await page.goto(`${d.url}#/terminal?host=box&name=missing`);
    // No tmux server runs now (the first test killed the last session): still no such session.
    await page.locator('.term-status.closed.failed', { hasText: /^No such host or session: / }).waitFor();

    d.tmux('new-session', '-d', '-s', 'crowd');
    const viewers = [];
    for (let i = 0; i < 5; i++) {
      const viewer = await context.newPage();
      await viewer.goto(`${d.url}#/terminal?host=box&name=crowd&readOnly=true`);
      await viewer.locator('.term-status', { hasText: 'attached' }).waitFor();
      viewers.push(viewer);
    }
    await page.goto(`${d.url}#/terminal?host=box&name=crowd`);
    await page.locator('.term-status.closed', { hasText: /^Too many terminals open: boss already has 5 attaches open/ }).waitFor();
    d.tmux('kill-session', '-t', '=crowd');
    await viewers[0]!.locator('.term-status.closed', { hasText: 'The session ended or was detached.' }).waitFor();
    assert.equal(await viewers[0]!.locator('.term-status.failed').count(), 0, 'an ended session is no failure');
    await context.close();
  });

  test('a flood is handed to xterm about 10 times a second, but not while someone types', async () => {
    d.tmux('new-session', '-d', '-s', 'pace', 'sh');
    const { context, page } = await login();
    // Each write to xterm is acknowledged once rendered: the acks the page sends count its writes.
    await page.addInitScript(() => {
      const acks: number[] = [];
      (globalThis as unknown as { acks: number[] }).acks = acks;
      const send = WebSocket.prototype.send;
      WebSocket.prototype.send = function (data) {
        if (typeof data === 'string' && data.startsWith('{"type":"ack"')) acks.push(performance.now());
        send.call(this, data);
      };
    });
    await page.goto(`${d.url}#/terminal?host=box&name=pace`);
    await page.reload(); // a new document, so that the init script runs
    await page.locator('.term-status', { hasText: 'attached' }).waitFor();
    await page.locator('.xterm-helper-textarea').focus();
    d.tmux('send-keys', '-t', '=pace:', 'yes', 'Enter');
    await sleep(1500);
    const flood = await page.evaluate(() => {
      const acks = (globalThis as unknown as { acks: number[] }).acks;
      const now = performance.now();
      return acks.filter((t) => t > now - 1000).length;
    });
    // While someone types (here into `yes`, which ignores it), output is not held back: echoes and an
    // editor's redraws go at once.
    const typedFrom = await page.evaluate(() => performance.now());
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('k');
      await sleep(20);
    }
    const typing = await page.evaluate((from) => {
      const acks = (globalThis as unknown as { acks: number[] }).acks.filter((t) => t > from);
      return acks.length / (((acks.at(-1) ?? from) - from) / 1000);
    }, typedFrom);
    d.tmux('send-keys', '-t', '=pace:', 'C-c');
    await until('the flood stopped', () => d.tmux('display-message', '-p', '-t', '=pace:', '#{pane_current_command}').trim() !== 'yes');
    // At most 1000 ms / 100 ms, with slack for timers; unpaced, every frame from the daemon (up to 125 a
    // second) was a write. Fewer when the machine is busy: a write is counted once rendered, and a loaded
    // renderer takes longer per write (3 in a full test run here); none would mean the flood stalled.
    // While typing, more than a paced flood could ever bring (57 seen beside 3 other test files).
    assert.ok(flood >= 1 && flood <= 20, `${flood} writes in the flood's last second`);
    assert.ok(typing > 30, `${typing.toFixed(0)} writes a second while typing (paced: about 10)`);
    await context.close();
  });

  test('phone-sized: the key bar is shown and its Ctrl-C interrupts a running sleep', async () => {
    d.tmux('new-session', '-d', '-s', 'phone', '-x', '40', '-y', '20');
    const { context, page } = await login({ width: 390, height: 844 });
    await page.goto(`${d.url}#/sessions`);
    // Made behind remux's back: it shows once the hosts are asked again.
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.locator('tr[data-session=phone]').getByRole('link', { name: 'Attach' }).click();
    await page.locator('.term-status', { hasText: 'attached' }).waitFor();
    const keys = page.getByRole('toolbar', { name: 'keys' });
    assert.equal(await keys.isVisible(), true);
    await page.locator('.xterm-helper-textarea').focus();
    await page.keyboard.type('sleep 300');
    await keys.getByRole('button', { name: 'Enter' }).click();
    await until('sleep runs in the pane', () => d.tmux('display-message', '-p', '-t', '=phone:', '#{pane_current_command}').trim() === 'sleep');
    await keys.getByRole('button', { name: 'Ctrl-C' }).click();
    await until('Ctrl-C interrupted sleep', () => d.tmux('display-message', '-p', '-t', '=phone:', '#{pane_current_command}').trim() !== 'sleep');
    await page.keyboard.type('echo key-$((40+2))');
    await keys.getByRole('button', { name: 'Enter' }).click();
    await until('the shell ran the next line', () => /key-42/.test(pane('phone')));
    await context.close();
  });

  test('phone-sized: a watcher sees every column of a 120-column session, shrunk to the width, and follows its size without changing it', async () => {
    // A line as wide as the session, its last column marked; nobody interactive is attached (tmux would
    // give a new session an attached client's size, whatever -x and -y say).
    await until('the clients of the tests before are gone', () => d.tmux('list-clients').trim() === '');
    const line = `L${'-'.repeat(118)}Z`;
    d.tmux('new-session', '-d', '-s', 'wide', '-x', '120', '-y', '40', `printf '%s' '${line}'; sleep 600`);
    const windowSize = (): string => d.tmux('display-message', '-p', '-t', '=wide:', '#{window_width}x#{window_height}').trim();
    const phone = { width: 390, height: 844 };
    const { context, page } = await login(phone);
    await page.goto(`${d.url}#/terminal?host=box&user=${d.me}&name=wide&readOnly=true`);
    await page.locator('.term-status', { hasText: 'read-only' }).waitFor();
    // One row holds the whole line: the terminal is 120 columns, nothing wrapped.
    await page.locator('.xterm-rows > div', { hasText: line }).waitFor();
    const screen = "document.querySelector('.term-screen')";
    const fits = `${screen}.scrollWidth <= ${screen}.clientWidth && ${screen}.getBoundingClientRect().right <= innerWidth`;
    const fontSize = "parseFloat(getComputedStyle(document.querySelector('.xterm-rows')).fontSize)";
    const rows = "document.querySelectorAll('.xterm-rows > div').length";
    assert.ok(await page.evaluate(fits), 'every column is in sight, no sideways scrolling');
    const small = (await page.evaluate(fontSize)) as number;
    assert.ok(small < 12, `the font shrank (${small}px)`);
    assert.equal(await page.evaluate(rows), 41, 'the window and its status line');
    assert.equal(windowSize(), '120x40', 'the watcher did not size the session to the phone');
    assert.equal(await page.getByRole('toolbar', { name: 'keys' }).isVisible(), false, 'a watcher has no keys to press');

    // The session is resized (an interactive client would): the watch takes the new size within seconds.
    d.tmux('resize-window', '-t', '=wide:', '-x', '100', '-y', '30');
    await inPage(page, `${rows} === 31`, 10_000);
    await inPage(page, `${fontSize} > ${small}`);
    assert.ok(await page.evaluate(fits), 'still every column');
    // Turned sideways: more width, a bigger font, but no more than the height takes (the width alone made
    // the 31 rows taller than the window, and the screen scrolled).
    const portrait = (await page.evaluate(fontSize)) as number;
    await page.setViewportSize({ width: phone.height, height: phone.width });
    await inPage(page, `${fontSize} > ${portrait}`);
    assert.ok(await page.evaluate(fits), 'every column in landscape too');
    const fitsTall = `${screen}.scrollHeight <= ${screen}.clientHeight && ${screen}.getBoundingClientRect().bottom <= innerHeight`;
    assert.ok(await page.evaluate(fitsTall), 'and every row');
    assert.equal(windowSize(), '100x30');
    d.tmux('kill-session', '-t', '=wide');
    await context.close();
  });

  test('a phone held sideways (844x390): the terminal takes the height, the header goes, the way back and the controls stay', async () => {
    d.tmux('new-session', '-d', '-s', 'sideways');
    const { context, page } = await login({ width: 844, height: 390 });
    await page.goto(`${d.url}#/sessions`);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.locator('tr[data-session=sideways]').getByRole('link', { name: 'Attach' }).click();
    await page.locator('.term-status', { hasText: 'attached' }).waitFor();
    // The rows tmux gave the session: what the page left its terminal (12, the window's status line
    // included, when the site's header and the bars took the rest).
    const windowRows = (): number => Number(d.tmux('display-message', '-p', '-t', '=sideways:', '#{window_height}').trim());
    let rows = 0;
    for (let i = 0; i < 300 && (rows = windowRows()) < 18; i++) await sleep(10);
    assert.ok(rows >= 18, `the session has ${rows} rows on a 390 px high screen`);
    assert.equal(await page.locator('body > header').isVisible(), false, "the site's header is not on the terminal page");
    const keys = page.getByRole('toolbar', { name: 'keys' });
    for (const control of [page.getByRole('link', { name: '← Sessions' }), page.getByRole('button', { name: 'Copy' }), page.getByRole('button', { name: 'Paste' }), keys]) {
      const box = await control.boundingBox();
      assert.ok(box && box.y >= 0 && box.y + box.height <= 390, `in sight: ${String(control)} ${JSON.stringify(box)}`);
    }
    // Upright again, the header is back; so it is on every other page.
    await page.setViewportSize({ width: 390, height: 844 });
    assert.equal(await page.locator('body > header').isVisible(), true, 'upright: the header');
    await page.setViewportSize({ width: 844, height: 390 });
    await page.getByRole('link', { name: '← Sessions' }).click();
    await page.locator('tr[data-session=sideways]').waitFor();
    assert.equal(await page.getByRole('link', { name: 'Audit' }).isVisible(), true, 'the sessions page has the header and its links');
    d.tmux('kill-session', '-t', '=sideways');
    await context.close();
  });

  test("phone-sized: every button on the sessions and terminal pages is a finger's size", async () => {
    d.tmux('new-session', '-d', '-s', 'fingers');
    const { context, page } = await login({ width: 390, height: 844 });
    /** The visible buttons (and links drawn as buttons) shorter than 2.4rem (38.4 px), by their text. */
    const small = (): Promise<string[]> =>
      page.evaluate(`[...document.querySelectorAll('button, a.button, select')].filter((b) => b.offsetParent !== null && b.getBoundingClientRect().height < 38).map((b) => b.textContent.trim() + ' ' + Math.round(b.getBoundingClientRect().height) + 'px')`);
    await page.goto(`${d.url}#/sessions`);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.locator('tr[data-session=fingers]').getByRole('link', { name: 'Attach' }).waitFor();
    assert.deepEqual(await small(), []);
    await page.locator('tr[data-session=fingers]').getByRole('link', { name: 'Attach' }).click();
    await page.locator('.term-status', { hasText: 'attached' }).waitFor();
    assert.deepEqual(await small(), []);
    d.tmux('kill-session', '-t', '=fingers');
    await context.close();
  });

  test('phone-sized: no page is wider than the screen', async () => {
    d.tmux('new-session', '-d', '-s', 'narrow');
    const { context, page } = await login({ width: 390, height: 844 });
    for (const route of ['hosts', 'sessions', 'agents', 'approvals', 'audit', 'run', 'recordings']) {
      await page.goto(`${d.url}#/${route}`);
      await page.locator('main h2').first().waitFor();
      // The widest the page gets while its data arrives (pages stream or poll: no idle moment to wait for).
      let width = 0;
      for (let i = 0; i < 10; i++, await sleep(50)) {
        width = Math.max(width, await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth));
      }
      assert.ok(width <= 390, `#/${route} is ${width} px wide on a 390 px screen`);
    }
    d.tmux('kill-session', '-t', '=narrow');
    await context.close();
  });
});
