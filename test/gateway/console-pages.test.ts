// The console's audit, run and recordings pages in the system Chromium against a real daemon: a command
// run with `remux client run` shows in the audit trail and a new one arrives live when following, 100 at a
// time with "More" for older ones below; an
// action that asked names how it was answered; the run panel streams a host's output and exit status,
// shows a refusal's reason and 77, and cancels; a recording plays in xterm.js, from the list or from its
// attach's audit record, its bar jumps forwards and back, and on a phone its terminal shrinks to the
// width (turned sideways, to the height too) and its controls are in sight; the list comes 100 at a time,
// "More" for the next. Nothing may break the CSP (Chromium reports every refusal as a
// console error).
import assert from 'node:assert/strict';
import { userInfo } from 'node:os';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import { AuditStore } from '../../src/audit/store.js';
import { AttachRecorder } from '../../src/sessions/recording.js';
import { loggedIn } from '../support/browser.js';
import { startBrowserDaemon, type BrowserDaemon } from '../support/browser-daemon.js';
import { remux } from '../support/cli.js';
import { plantRecordings } from '../support/recordings.js';

let d: BrowserDaemon;

before(async () => {
  d = await startBrowserDaemon(
    { 'policies.yaml': 'policies:\n  read_only:\n    sandbox: false\n    capabilities:\n      - { operation: execute_binary, resource: echo|sleep }\n      - { operation: write_stdout, resource: null }\n' },
    { name: 'boss', flags: ['--admin'] },
  );
});
after(async () => {
  await d?.stop();
});

/** Until `expression` is true in the page (waitForFunction polls with eval, which the console's CSP refuses). */
async function until(page: Page, expression: string, ms = 3000): Promise<void> {
  for (const deadline = Date.now() + ms; !(await page.evaluate(expression)); await sleep(25)) {
    assert.ok(Date.now() < deadline, `within ${ms} ms: ${expression}`);
  }
}

/** A logged-in page (Playwright's 1280x720 unless `viewport`), and the console errors and page errors it collects. */
async function console(path: string, viewport?: { width: number; height: number }): Promise<{ page: Page; problems: string[]; done(): Promise<void> }> {
  const context = await d.browser.newContext({ ignoreHTTPSErrors: true, ...(viewport ? { viewport } : {}) });
  const page = await context.newPage();
  const problems: string[] = [];
  // The first GET /api/me, before logging in, is a 401 that Chromium logs itself; anything else is ours.
  page.on('console', (m) => void (m.type() === 'error' && !/status of 401/.test(m.text()) && problems.push(m.text())));
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(`${d.url}${path}`);
  await page.locator('#token').fill(d.token);
  await page.locator('#login button[type=submit]').click();
  await page.locator('#who', { hasText: 'boss' }).waitFor();
  return { page, problems, done: () => context.close() };
}

test('the audit page shows what `remux client run` did, and follows new actions live', async () => {
  const first = await remux(['client', 'run', 'localhost', '--', 'echo first'], { env: d.env });
  assert.equal(first.code, 0, first.stderr);
  const { page, problems, done } = await console('#/audit');
  const row = page.locator('table.audit tbody tr', { hasText: 'echo first' });
  await row.waitFor();
  const cells = await row.locator('td').allTextContents();
  assert.deepEqual(cells.slice(1, 7), [`cli:${userInfo().username}`, 'localhost', 'exec', 'echo first', 'allow', '0']);
  assert.match(cells[7]!, /^\d+ ms$|^\d+\.\d s$/);

  await page.locator('input[name=follow]').check();
  await page.locator('.status', { hasText: 'Following' }).waitFor();
  const second = await remux(['client', 'run', 'localhost', '--', 'echo second'], { env: d.env });
  assert.equal(second.code, 0, second.stderr);
  const top = page.locator('table.audit tbody tr').first();
  await top.filter({ hasText: 'echo second' }).waitFor({ timeout: 5000 });
  await top.locator('td').nth(6).filter({ hasText: /^0$/ }).waitFor();
  assert.equal(await page.locator('table.audit tbody tr', { hasText: 'echo second' }).count(), 1, 'its begin and end are one row');
  assert.deepEqual(problems, []);
  await done();
});

test('an action that asked shows how it was answered, escaped, on a desktop and on a phone', async () => {
  const store = AuditStore.open(join(d.home, 'audit.db'));
  await store.record(
    { principal: 'boss', host: 'localhost', operation: 'exec', command: 'rm -rf /tmp/approved-one', decision: 'ask', reason: 'admin#3: ask on rm' },
    { exitCode: 0, durationMs: 40, approval: { outcome: 'approved', by: '<b>ops</b>', via: 'ntfy', id: 'k3Q' } },
  );
  await store.record(
    { principal: 'boss', host: 'localhost', operation: 'exec', command: 'rm -rf /tmp/refused-one', decision: 'ask', reason: 'admin#3: ask on rm' },
    { exitCode: 77, durationMs: 40, error: 'admin#3: ask on rm; approval refused by ops via web', approval: { outcome: 'refused', by: 'ops', via: 'web', id: 'k4R' } },
  );
  // An ESC and a reordering control, in the command and in its refusal: shown as what they are, never drawn or obeyed.
  await store.record(
    { principal: 'boss', host: 'localhost', operation: 'exec', command: 'printf \u001b[2J-escaped-one\u202e', decision: 'deny', reason: 'ops#1: deny \u001b[31mprintf' },
    { exitCode: 77, durationMs: 1, refusal: 'ops#1: deny \u001b[31mprintf' },
  );
  store.close();
  const { page, problems, done } = await console('#/audit');
  const approved = page.locator('table.audit tbody tr', { hasText: 'approved-one' });
  await approved.waitFor();
  assert.equal(await approved.locator('td').nth(5).textContent(), 'ask → approved by <b>ops</b> via ntfy');
  assert.equal(await page.locator('table.audit b').count(), 0, 'a name is text, never markup');
  const refused = page.locator('table.audit tbody tr', { hasText: 'refused-one' });
  assert.equal(await refused.locator('td').nth(5).textContent(), 'ask → refused by ops via web');
  const escaped = page.locator('table.audit tbody tr', { hasText: 'escaped-one' });
  assert.equal(await escaped.locator('td').nth(4).locator('span').textContent(), 'printf \\x1b[2J-escaped-one<U+202E>');
  assert.equal(await escaped.locator('.note').textContent(), 'ops#1: deny \\x1b[31mprintf');
  // On a desktop the Decision column says it; the command's cell does not repeat it, and a refusal's note
  // is why it asked, not the answer again.
  assert.equal(await approved.locator('.approval').isVisible(), false);
  assert.equal(await refused.locator('.note').textContent(), 'admin#3: ask on rm');
  const answers = async (): Promise<number> => (await refused.innerText()).split('refused by ops via web').length - 1;
  assert.equal(await answers(), 1, await refused.innerText());

  // A phone hides the Decision column: the command's cell names the answer.
  await page.setViewportSize({ width: 390, height: 844 });
  assert.equal(await approved.locator('td').nth(5).isVisible(), false);
  const note = approved.locator('.approval');
  assert.equal(await note.isVisible(), true);
  assert.equal(await note.textContent(), 'ask → approved by <b>ops</b> via ntfy');
  const box = (await note.boundingBox())!;
  assert.ok(box.x >= 0 && box.x + box.width <= 390, `the answer is in sight: ${JSON.stringify(box)}`);
  assert.equal(await answers(), 1, await refused.innerText());
  assert.deepEqual(problems, []);
  await done();
});

test('the run panel streams output and the exit status; a refusal shows the policy\'s reason and 77', async () => {
  const { page, problems, done } = await console('#/run');
  await page.locator('input[name=command]').fill('echo hello from the panel');
  await page.locator('form.run button[type=submit]').click();
  const host = page.locator('.run-host[data-host=localhost]');
  await host.locator('.output', { hasText: 'hello from the panel' }).waitFor();
  await host.locator('.result.ok', { hasText: /^exit 0 · ok/ }).waitFor();
  await page.locator('.status', { hasText: 'Exit status 0' }).waitFor();

  await page.locator('input[name=command]').fill('cat /etc/passwd');
  await page.locator('form.run button[type=submit]').click();
  const refused = host.locator('.result.failed');
  await refused.waitFor();
  assert.match((await refused.textContent())!, /^exit 77 · denied · \d+ ms · .*cat/);
  await page.locator('.status', { hasText: 'Exit status 77' }).waitFor();

  // Cancel hangs up on the request: the daemon stops the command, which the audit trail shows as ended.
  await page.locator('input[name=command]').fill('sleep 30');
  await page.locator('form.run button[type=submit]').click();
  await host.locator('.result', { hasText: 'running' }).waitFor();
  await page.locator('form.run button', { hasText: 'Cancel' }).click();
  await page.locator('.status', { hasText: 'Cancelled' }).waitFor();
  const sleep = async (): Promise<{ status: string; exitCode: number | null; signal: string | null } | undefined> =>
    ((await page.evaluate("fetch('/api/audit?limit=5').then((r) => r.json())")) as Array<{ command: string; status: string; exitCode: number | null; signal: string | null }>).find((a) => a.command === 'sleep 30');
  for (const deadline = Date.now() + 5000; (await sleep())?.status !== 'complete'; await new Promise((r) => setTimeout(r, 100))) {
    assert.ok(Date.now() < deadline, 'the cancelled command was still running 5 s later');
  }
  assert.notEqual((await sleep())?.exitCode, 0);
  assert.deepEqual(problems, []);
  await done();
});

test('the recordings page lists a recording and plays it in a read-only terminal', async () => {
  const rec = new AttachRecorder(join(d.home, 'recordings'), { host: 'localhost', user: 'me', session: 'build', principal: 'boss', readOnly: false, actionId: null }, { cols: 60, rows: 10 });
  rec.output(Buffer.from('hello from the recording\r\n'));
  await new Promise((r) => setTimeout(r, 300));
  // Bold and a 24-bit colour: xterm styles the latter with a style attribute, which the CSP must not refuse.
  rec.output(Buffer.from('\x1b[1mand later\x1b[0m \x1b[38;2;255;120;0min orange\x1b[0m\r\n'));
  rec.end();
  const { page, problems, done } = await console('#/recordings');
  const row = page.locator(`tr[data-id="${rec.id}"]`);
  await row.waitFor();
  assert.match((await row.textContent())!, /boss.*localhost.*me:build/);
  await row.locator('button', { hasText: 'Play' }).click();
  const screen = page.locator('.player-screen .xterm-rows');
  await screen.filter({ hasText: 'hello from the recording' }).waitFor();
  await screen.filter({ hasText: 'and later' }).waitFor();
  await page.locator('.controls .play', { hasText: 'Play' }).waitFor(); // the end: the button offers to play again
  // xterm's computed styles reached the page through constructed sheets, not refused <style> elements.
  assert.ok(await page.evaluate("document.adoptedStyleSheets.some((s) => [...s.cssRules].some((r) => r.cssText.includes('xterm')))"));
  assert.equal(await page.locator('style').count(), 0);

  await page.locator('.controls button', { hasText: 'From the start' }).click();
  await until(page, "!document.querySelector('.player-screen .xterm-rows').textContent.includes('hello')"); // back at the start: the screen is cleared
  await page.locator('.controls .play').click();
  await screen.filter({ hasText: 'and later' }).waitFor();

  // The attach's audit record names its recording (its `recording` field): the audit page links to the player.
  const store = AuditStore.open(join(d.home, 'audit.db'));
  await store.record(
    { principal: 'boss', host: 'localhost', operation: 'session.attach', resource: 'me:build', decision: 'allow', reason: "remux's own tmux command (session.attach)", recording: rec.id },
    { exitCode: 0, durationMs: 300 },
  );
  store.close();
  await page.goto(`${d.url}#/audit`);
  await page.locator('table.audit tr', { hasText: 'session.attach' }).locator('a.recording-link').click();
  await page.locator('.player-screen .xterm-rows', { hasText: 'and later' }).waitFor();
  assert.deepEqual(problems, []);
  await done();
});

test('a recording cut short in its last line (the daemon killed while writing it) plays up to the cut', async () => {
  const rec = new AttachRecorder(join(d.home, 'recordings'), { host: 'localhost', user: 'me', session: 'cut', principal: 'boss', readOnly: false, actionId: null }, { cols: 60, rows: 10 });
  rec.output(Buffer.from('written whole\r\n'));
  rec.end();
  writeFileSync(rec.path, `${readFileSync(rec.path, 'utf8')}[0.5, "o", "cut in the mid`);
  const { page, problems, done } = await console(`#/recordings?id=${rec.id}`);
  await page.locator('.player-screen .xterm-rows', { hasText: 'written whole' }).waitFor();
  await page.locator('.controls .play', { hasText: 'Play' }).waitFor(); // played to its end: the cut line is left out
  assert.doesNotMatch((await page.locator('.player-screen .xterm-rows').textContent())!, /cut in the mid/);
  assert.deepEqual(problems, []);
  await done();
});

test('the position bar jumps forwards and back, by dragging, clicking and the keyboard, without playing up to there', async () => {
  const rec = new AttachRecorder(join(d.home, 'recordings'), { host: 'localhost', user: 'me', session: 'seek', principal: 'boss', readOnly: false, actionId: null }, { cols: 40, rows: 8 });
  rec.end();
  // The events at known times (no pause over 2 s, which the player would shorten): the screen is cleared at 2 s.
  const header = readFileSync(rec.path, 'utf8').split('\n')[0]!;
  const events = [[0.5, 'o', 'alpha\r\n'], [2, 'o', '\x1b[2J\x1b[Hbeta\r\n'], [4, 'o', 'gamma\r\n'], [6, 'o', 'delta\r\n']];
  writeFileSync(rec.path, [header, ...events.map((e) => JSON.stringify(e))].join('\n') + '\n');

  const { page, problems, done } = await console(`#/recordings?id=${rec.id}`);
  const play = page.locator('.controls .play');
  await play.filter({ hasText: 'Pause' }).waitFor();
  const bar = page.getByRole('slider', { name: 'position' });
  /** The screen shows these words and none of those. */
  const shows = async (words: string[], not: string[]): Promise<void> => {
    const text = "document.querySelector('.player-screen .xterm-rows').textContent";
    await until(page, `${JSON.stringify(words)}.every((w) => ${text}.includes(w)) && !${JSON.stringify(not)}.some((w) => ${text}.includes(w))`);
  };

  // The keyboard, while it plays: End (playing is over), Home, and arrows 5 s at a time.
  await bar.focus();
  await page.keyboard.press('End');
  await shows(['beta', 'gamma', 'delta'], ['alpha']);
  await play.filter({ hasText: 'Play' }).waitFor();
  assert.equal(await page.locator('.controls .time').textContent(), '0:06 / 0:06');
  await page.keyboard.press('Home');
  await shows([], ['alpha', 'beta', 'gamma', 'delta']);
  await page.keyboard.press('ArrowRight');
  await shows(['beta', 'gamma'], ['alpha', 'delta']);
  assert.equal(await bar.getAttribute('aria-valuetext'), '0:05 of 0:06');
  assert.equal(await play.textContent(), 'Play', 'a jump does not start playing');

  // Back, by a click a quarter along the bar (about 1.5 s): the screen before it was cleared.
  const box = (await bar.boundingBox())!;
  await page.mouse.click(box.x + box.width / 4, box.y + box.height / 2);
  await shows(['alpha'], ['beta', 'gamma', 'delta']);
  // Dragged back and forth, many jumps while the screen is drawn: it ends where the thumb was let go.
  await page.mouse.move(box.x + box.width / 4, box.y + box.height / 2);
  await page.mouse.down();
  for (const f of [0.9, 0.2, 0.8, 0.1, 0.95, 0.5, 0.72]) await page.mouse.move(box.x + box.width * f, box.y + box.height / 2, { steps: 3 });
  await page.mouse.up();
  await shows(['beta', 'gamma'], ['alpha', 'delta']);

  // Playing goes on from there.
  await play.click();
  await shows(['delta'], ['alpha']);
  await play.filter({ hasText: 'Play' }).waitFor();
  assert.deepEqual(problems, []);
  await done();
});

test('on a phone the player shrinks a wide recording to the width, brings itself into sight and keeps its controls there', async () => {
  const recorder = (session: string, size: { cols: number; rows: number }): AttachRecorder =>
    new AttachRecorder(join(d.home, 'recordings'), { host: 'localhost', user: 'me', session, principal: 'boss', readOnly: false, actionId: null }, size);
  // A recording made at a desktop's size, then enough newer ones that it is far down the phone's list.
  const wide = recorder('desk', { cols: 120, rows: 40 });
  for (let row = 1; row < 40; row++) wide.output(Buffer.from(`line ${row} ${'x'.repeat(100)}\r\n`));
  wide.end();
  for (let i = 0; i < 15; i++) recorder(`other${i}`, { cols: 80, rows: 24 }).end();
  const watched = new AttachRecorder(join(d.home, 'recordings'), { host: 'localhost', user: 'root', session: 'walk-phone', principal: 'boss', readOnly: true, actionId: null }, { cols: 80, rows: 24 });
  watched.end();

  const problems: string[] = [];
  const phone = { width: 390, height: 844 };
  const { context, page } = await loggedIn(d.browser, { url: `${d.url}#/recordings`, token: d.token, who: 'boss', problems }, phone);
  // Every column a phone keeps is in sight, the length last, a read-only attach's longer session name too.
  const length = (await page.locator(`tr[data-id="${watched.id}"] td`).nth(5).boundingBox())!;
  assert.ok(length.x + length.width <= phone.width, `the length is in sight: ${JSON.stringify(length)}`);
  const row = page.locator(`tr[data-id="${wide.id}"]`);
  await row.scrollIntoViewIfNeeded();
  await row.locator('button', { hasText: 'Play' }).click();
  await page.locator('.player-screen .xterm-rows', { hasText: 'line 39' }).waitFor();
  const fits = "(() => { const s = document.querySelector('.player-screen'); return s.scrollWidth <= s.clientWidth && s.clientWidth <= innerWidth; })()";
  const fontSize = "parseFloat(getComputedStyle(document.querySelector('.player-screen .xterm-rows')).fontSize)";
  assert.ok(await page.evaluate(fits), 'all 120 columns are in sight, no sideways scrolling');
  const portrait = (await page.evaluate(fontSize)) as number;
  assert.ok(portrait < 13, `the font shrank (${portrait}px)`);
  for (const name of ['Play', 'From the start']) {
    const box = (await page.locator('.controls button', { hasText: name }).boundingBox())!;
    assert.ok(box.y >= 0 && box.y + box.height <= phone.height, `${name} is in sight without scrolling: ${JSON.stringify(box)}`);
  }
  for (const [what, control] of [['the speed', '.controls select'], ['the position bar', '.controls input.seek']] as const) {
    const box = (await page.locator(control).boundingBox())!;
    assert.ok(box.x >= 0 && box.x + box.width <= phone.width && box.y >= 0 && box.y + box.height <= phone.height, `${what} is in sight without scrolling: ${JSON.stringify(box)}`);
  }

  // Turned sideways: more width, a bigger font, still every column; and every row, with the title and
  // the controls, in the window's height (the screen was as tall as the width made it: 40 rows did not fit).
  await page.setViewportSize({ width: phone.height, height: phone.width });
  await until(page, `${fontSize} > ${portrait}`);
  assert.ok(await page.evaluate(fits), 'all columns are in sight in landscape');
  const player = (await page.evaluate("document.querySelector('.player').offsetHeight")) as number;
  assert.ok(player <= phone.width, `the player is ${player} px tall in a ${phone.width} px window`);
  assert.deepEqual(problems, []);
  await context.close();

  // A desktop keeps the normal font for a recording that fits (40 rows need more than 720 px).
  const { page: desktop, problems: desktopProblems, done } = await console(`#/recordings?id=${wide.id}`, { width: 1366, height: 850 });
  await desktop.locator('.player-screen .xterm-rows', { hasText: 'line 39' }).waitFor();
  assert.equal(await desktop.evaluate(fontSize), 13);
  assert.ok(await desktop.evaluate(fits));
  assert.deepEqual(desktopProblems, []);
  await done();
});

test('the recordings page lists 100 at first and the next ones with "More"; a link to an older one still plays it', async () => {
  const dir = join(d.home, 'recordings');
  // Older than any other test's: after them in the list, the oldest beyond the first page.
  const planted = plantRecordings(dir, 120, (i) => ({ host: 'localhost', user: 'me', session: `old${i}`, principal: 'boss', readOnly: false, actionId: null }));
  const all = readdirSync(dir).filter((name) => name.endsWith('.cast')).length;
  const { page, problems, done } = await console(`#/recordings?id=${planted[0]}`);
  await page.locator('.player h3', { hasText: 'me@localhost:old0' }).waitFor();
  const rows = page.locator('table.recordings tbody tr');
  await until(page, "document.querySelectorAll('table.recordings tbody tr').length === 100");
  assert.equal(await page.locator(`tr[data-id="${planted[0]}"]`).count(), 0, 'not on the first page');
  await page.locator('button.more').click();
  await until(page, `document.querySelectorAll('table.recordings tbody tr').length === ${all}`);
  assert.equal(await rows.last().getAttribute('data-id'), planted[0]);
  assert.ok(await page.locator('button.more').isHidden(), 'none older left');
  assert.deepEqual(problems, []);
  await done();
});

test('the audit page lists 100 at first and the older ones with "More", below; following, new ones still come on top', async (t) => {
  const store = AuditStore.open(join(d.home, 'audit.db'));
  t.after(() => store.close());
  for (let i = 0; i < 230; i++) await store.record({ principal: 'boss', host: 'localhost', operation: 'exec', command: `echo paged-${i}`, decision: 'allow' }, { exitCode: 0, durationMs: 1 });
  // One login (logins are rate limited, and audited): the phone is the same page made narrow.
  const { page, problems, done } = await console('#/audit', { width: 1280, height: 800 });
  /** Every action's id, newest first: read after logging in, which is audited too. */
  const ids = store.list().map((a) => a.id).reverse();
  const shownIds = (): Promise<number[]> => page.evaluate("[...document.querySelectorAll('table.audit tbody tr')].map((tr) => Number(tr.dataset.id))") as Promise<number[]>;
  const rowsAre = (n: number): Promise<void> => until(page, `document.querySelectorAll('table.audit tbody tr').length === ${n}`);

  for (const [name, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]] as const) {
    await page.setViewportSize(viewport);
    await page.goto(`${d.url}#/audit?view=${name}`);
    await rowsAre(100);
    assert.deepEqual(await shownIds(), ids.slice(0, 100));
    await page.locator('button.more').click();
    await rowsAre(200);
    assert.deepEqual(await shownIds(), ids.slice(0, 200), 'the next page below, newest first');
    await page.locator('button.more').scrollIntoViewIfNeeded();
    await page.screenshot({ path: `/tmp/audit-more-${name}.png` });
    while (await page.locator('button.more').isVisible()) {
      const before = (await shownIds()).length;
      await page.locator('button.more').click();
      await until(page, `document.querySelectorAll('table.audit tbody tr').length > ${before}`);
    }
    assert.deepEqual(await shownIds(), ids, 'every action once, and no "More" when none older is left');
  }

  // Following: the stream's first page, "More" for the older ones, and a new action on top.
  await page.goto(`${d.url}#/audit?follow=1`);
  await page.locator('.status', { hasText: 'Following' }).waitFor();
  assert.deepEqual(await shownIds(), ids.slice(0, 100));
  await page.locator('button.more').click();
  await rowsAre(200);
  assert.deepEqual(await shownIds(), ids.slice(0, 200));
  const run = await remux(['client', 'run', 'localhost', '--', 'echo after-more'], { env: d.env });
  assert.equal(run.code, 0, run.stderr);
  await page.locator('table.audit tbody tr').first().filter({ hasText: 'echo after-more' }).waitFor({ timeout: 5000 });
  assert.deepEqual((await shownIds()).slice(1), ids.slice(0, 200), 'the new one on top, the pages under it as they were');
  assert.deepEqual(problems, []);
  await done();
});
