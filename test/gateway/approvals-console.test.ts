// The console's Approvals page in the system Chromium against a real daemon: a policy ask from a
// command run as another principal appears (the notification's link, #/approvals?id=ID, puts it first,
// and keeps it once answered), Approve releases the command, and the answer shows; on a phone-sized
// viewport the buttons fit. Nothing may break the CSP. An answer the daemon refuses stays said while the list reloads.
// An agent hook's question says where it comes from in words.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { ApprovalStore } from '../../src/notify/approvals.js';
import { startBrowserDaemon, type BrowserDaemon } from '../support/browser-daemon.js';
import { ASK_ON_TOUCH_POLICY } from '../support/approvals.js';
import { remux, spawnRemux } from '../support/cli.js';
import { httpRecorder } from '../support/http-recorder.js';

let d: BrowserDaemon;
let botToken = '';
// A webhook channel: where the tests find a question's decision links.
const hook = httpRecorder();

before(async () => {
  await hook.listen();
  const config = `default_policy: ops\nnotify:\n  channels:\n    - { type: webhook, url: "${hook.base()}/hook", allow_internal: true }\n`;
  d = await startBrowserDaemon({ 'policies.yaml': ASK_ON_TOUCH_POLICY, 'config.yaml': config }, { name: 'boss', flags: ['--admin'] });
  const bot = await remux(['principal', 'add', 'bot', '--admin', '--json'], { env: d.env });
  botToken = (JSON.parse(bot.stdout) as { token: string }).token;
});
after(async () => {
  await d?.stop();
  await hook.close();
});

/** `touch FILE` as bot, waiting for an approval; its id once the CLI says it waits. */
async function askToTouch(file: string): Promise<{ id: string; exited: Promise<number | null> }> {
  const run = spawnRemux(['client', 'run', 'localhost', '--', `touch ${file}`], { env: { ...d.env, REMUX_TOKEN: botToken } });
  let stderr = '';
  run.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = new Promise<number | null>((resolve) => run.once('exit', resolve));
  while (!/waiting for approval (\S+)/.test(stderr)) await sleep(20);
  return { id: /waiting for approval (\S+)/.exec(stderr)![1]!, exited };
}

/** The decision link for answer `label` of approval `id`, as the webhook channel was sent it. */
async function decisionLink(id: string, label: string): Promise<string> {
  for (;;) {
    const sent = hook.requests.map((r) => JSON.parse(r.body) as { url: string; actions: Array<{ label: string; url: string }> }).find((m) => m.url.includes(id));
    if (sent) return sent.actions.find((a) => a.label === label)!.url;
    await sleep(20);
  }
}

/** A browser logged in on the Approvals page that the notification's link opens, and the card of approval `id`. */
async function loggedInCard(id: string): Promise<{ context: BrowserContext; page: Page; card: Locator }> {
  const context = await d.browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(`${d.url}#/approvals?id=${id}`);
  await page.locator('#token').fill(d.token);
  await page.locator('#login button[type=submit]').click();
  return { context, page, card: page.locator(`section.approval[data-id="${id}"]`) };
}

for (const viewport of [
  { name: 'desktop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
]) {
  test(`${viewport.name}: the linked approval comes first; Approve runs the command and the answer shows`, async () => {
    const file = join(d.home, `approved-${viewport.name}`);
    const other = await askToTouch(join(d.home, `other-${viewport.name}`));
    const mine = await askToTouch(file);
    const context = await d.browser.newContext({ ignoreHTTPSErrors: true, viewport });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => void (m.type() === 'error' && !/status of 401/.test(m.text()) && problems.push(m.text())));
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${d.url}#/approvals?id=${mine.id}`);
    await page.locator('#token').fill(d.token);
    await page.locator('#login button[type=submit]').click();

    const first = page.locator('section.approval').first();
    await first.waitFor();
    assert.equal(await first.getAttribute('data-id'), mine.id, 'the linked approval is first');
    assert.match(await first.locator('h3').innerText(), /run `touch .*approved-/);
    assert.equal(await page.locator('section.approval').count(), 2);
    const approve = first.locator('button', { hasText: 'Approve' });
    const box = await approve.boundingBox();
    assert.ok(box && box.x + box.width <= viewport.width && box.height >= 38, `Approve fits and is tappable: ${JSON.stringify(box)}`);
    await page.screenshot({ path: `/tmp/approvals-${viewport.name}.png`, fullPage: true });
    assert.ok(!existsSync(file));

    await approve.click();
    assert.equal(await mine.exited, 0);
    assert.ok(existsSync(file), 'the command ran once approved in the console');
    // The linked approval stays, saying how it ended, without its buttons.
    await first.locator('td', { hasText: 'answered "Approve" by boss via web' }).waitFor();
    assert.equal(await first.getAttribute('data-id'), mine.id);
    assert.equal(await first.locator('button').count(), 0);

    await page.locator(`section.approval[data-id="${other.id}"] button`, { hasText: 'Deny' }).click();
    assert.equal(await other.exited, 77);
    assert.deepEqual(problems, []);
    await context.close();
  });
}

test('an answer the daemon refuses (answered elsewhere meanwhile) stays said when the list reloads', async () => {
  const asked = await askToTouch(join(d.home, 'answered-elsewhere'));
  const { context, page, card } = await loggedInCard(asked.id);
  await card.waitFor();
  // The list's reloads wait until the refusal is on the page: the card stays to be clicked.
  let release = (): void => {};
  const held = new Promise<void>((r) => (release = r));
  await page.route('**/api/approvals', async (route) => (await held, route.continue()));
  const denied = await remux(['approvals', 'deny', asked.id], { env: d.env });
  assert.equal(denied.code, 0, denied.stderr);
  assert.equal(await asked.exited, 77);
  await card.locator('button', { hasText: 'Approve' }).click();
  const refusal = page.locator('p.error', { hasText: /already answered "Deny"/ });
  await refusal.waitFor();
  const reloaded = page.waitForResponse((r) => r.url().endsWith('/api/approvals'));
  release();
  await reloaded;
  await card.locator('td', { hasText: /answered "Deny" by .* via cli/ }).waitFor();
  assert.equal(await refusal.isVisible(), true, 'the refusal is still said after the reload');
  await context.close();
});

test("a notification's link to an approval answered or expired meanwhile shows it, and how it ended", async () => {
  const answered = await askToTouch(join(d.home, 'answered-before-opened'));
  const denied = await remux(['approvals', 'deny', answered.id], { env: d.env });
  assert.equal(denied.code, 0, denied.stderr);
  assert.equal(await answered.exited, 77);
  const { context, page, card } = await loggedInCard(answered.id);
  await card.locator('td', { hasText: /answered "Deny" by .* via cli/ }).waitFor();
  assert.match(await card.locator('h3').innerText(), /run `touch .*answered-before-opened`/);
  assert.equal(await page.getByText('Nothing is waiting for an answer.').count(), 0);
  await context.close();
});

test("a decision link's confirm page on a phone: its button is tappable, apart from the facts, and answers", async () => {
  const file = join(d.home, 'approved-by-link');
  const asked = await askToTouch(file);
  const context = await d.browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await page.goto(await decisionLink(asked.id, 'Approve'));
  const button = page.locator('form.decision button');
  const [box, facts] = [await button.boundingBox(), await page.locator('main table').boundingBox()];
  assert.ok(box && facts && box.x + box.width <= 390 && box.height >= 38, `Approve fits and is tappable: ${JSON.stringify(box)}`);
  assert.ok(box.y >= facts.y + facts.height + 8, `Approve stands apart from the table above it: ${JSON.stringify({ box, facts })}`);
  await page.screenshot({ path: '/tmp/approval-link-phone.png', fullPage: true });
  await button.click();
  await page.getByText('You answered Approve').waitFor();
  assert.equal(await asked.exited, 0);
  assert.ok(existsSync(file));
  await context.close();
});

test('bidi controls and zero-width characters in the command are named on its card (Trojan Source)', async () => {
  const asked = await askToTouch(join(d.home, 'x\u202etxt.exe\u200b'));
  const { context, card } = await loggedInCard(asked.id);
  const question = await card.locator('h3').innerText();
  assert.match(question, /x<U\+202E>txt\.exe<U\+200B>/);
  assert.doesNotMatch(question, /[\u202e\u200b]/u);
  await card.locator('button', { hasText: 'Deny' }).click();
  assert.equal(await asked.exited, 77);
  await context.close();
});

test("an agent hook's question says where it comes from in words (not its source key), on its card and its confirm page", async () => {
  const store = ApprovalStore.open(join(d.home, 'approvals.db'), join(d.home, 'approvals.key'));
  try {
    // As a Claude Code session's hook asks (hooks.ts): its source is the key the watcher matches on.
    const from = 'Claude Code in agent session fix-login (ab12cd34)';
    const asked = store.create({ principal: 'agent:ab12cd34', host: 'localhost', what: 'Bash: npm publish', reason: 'Claude Code asks to use Bash in /w', source: 'agent:claude', from, ttlMs: 60_000 });
    const { context, page, card } = await loggedInCard(asked.id);
    await card.waitFor();
    assert.equal(await card.locator('tr', { hasText: 'From' }).locator('td').innerText(), from);
    await page.goto(new URL(`/approvals/${asked.id}?option=deny&token=${store.token(asked, 'deny')}`, d.url).href);
    assert.equal(await page.locator('main tr', { hasText: 'From' }).locator('td').innerText(), from);
    store.cancel(asked.id);
    await context.close();
  } finally {
    store.close();
  }
});

test('a question remux withdrew because its asker crashed says why on its card', async () => {
  const store = ApprovalStore.open(join(d.home, 'approvals.db'), join(d.home, 'approvals.key'));
  try {
    const asked = store.create({ principal: 'agent:ab12cd34', host: 'localhost', what: "answer claude's prompt in agent session web (ab12cd34): Run make?", reason: 'Run make?', source: 'the screen of agent session web: claude', ttlMs: 60_000 });
    const why = "the daemon that asked stopped (crash between 2026-12-07 06:41:10 and 06:41:40 UTC); the agent's prompt will be asked again if still on screen";
    store.cancel(asked.id, why);
    // The link's approval is shown though closed, saying how it ended.
    const { context, card } = await loggedInCard(asked.id);
    await card.waitFor();
    assert.equal(await card.locator('tr', { hasText: 'Status' }).locator('td').innerText(), `withdrawn: ${why}`);
    await context.close();
  } finally {
    store.close();
  }
});

test("on a phone, a long unbroken command and a multi-line one read as asked: nothing scrolls sideways, a newline shows as one, an ESC as an escape, on its card and its link's page", async () => {
  const store = ApprovalStore.open(join(d.home, 'approvals.db'), join(d.home, 'approvals.key'));
  try {
    const blob = 'H4sIAAAAAAAAA'.repeat(60);
    const long = store.create({ principal: 'bot', host: `web-${'x'.repeat(80)}.example.com`, what: `run \`echo ${blob} | base64 -d | sh\` on web1`, reason: `policy ops: ${'y'.repeat(300)}`, source: 'policy:ops', ttlMs: 60_000 });
    // Two commands, not echo's arguments: shown on a line of their own.
    const twoLines = store.create({ principal: 'bot', host: 'web1', what: 'run `echo cleaning up\nrm -rf /srv/data` on web1', reason: 'Bash command\n\n  rm -rf /srv/data\n\nDo you want to proceed?', source: 'policy:ops', ttlMs: 60_000 });
    const escaped = store.create({ principal: 'bot', host: 'web1', what: 'run `printf \u001b[2J` on web1', reason: 'Bash command\n\u001b[1m  printf\u001b[0m', source: 'policy:ops', ttlMs: 60_000 });
    const context = await d.browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    const sideways = (): Promise<number> => page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    await page.goto(`${d.url}#/approvals?id=${long.id}`);
    await page.locator('#token').fill(d.token);
    await page.locator('#login button[type=submit]').click();
    const card = page.locator(`section.approval[data-id="${twoLines.id}"]`);
    await card.waitFor();
    assert.equal(await sideways(), 0, 'the cards fit the phone');
    assert.equal(await card.locator('h3').innerText(), 'run `echo cleaning up\nrm -rf /srv/data` on web1');
    assert.equal(await card.locator('tr', { hasText: 'Why' }).locator('td').innerText(), 'Bash command\n\n  rm -rf /srv/data\n\nDo you want to proceed?');
    // A raw ESC (a terminal's prompt copied into the question) shows as an escape, not as a glyph.
    const escapedCard = page.locator(`section.approval[data-id="${escaped.id}"]`);
    assert.equal(await escapedCard.locator('h3').innerText(), 'run `printf \\x1b[2J` on web1');
    assert.equal(await escapedCard.locator('tr', { hasText: 'Why' }).locator('td').innerText(), 'Bash command\n\\x1b[1m  printf\\x1b[0m');
    for (const a of [long, twoLines]) {
      await page.goto(new URL(`/approvals/${a.id}?option=approve&token=${store.token(a, 'approve')}`, d.url).href);
      assert.equal(await sideways(), 0, "the link's page fits the phone");
      assert.equal(await page.locator('main h2').innerText(), 'Approval', 'titled in a word: what is asked is in the table');
      assert.equal(await page.locator('main tr', { hasText: 'What' }).locator('td').innerText(), a.what);
    }
    // And on its link's page.
    await page.goto(new URL(`/approvals/${escaped.id}?option=approve&token=${store.token(escaped, 'approve')}`, d.url).href);
    assert.equal(await page.locator('main tr', { hasText: 'What' }).locator('td').innerText(), 'run `printf \\x1b[2J` on web1');
    assert.equal(await page.locator('main tr', { hasText: 'Why' }).locator('td').innerText(), 'Bash command\n\\x1b[1m  printf\\x1b[0m');
    await context.close();
    store.cancel(long.id);
    store.cancel(twoLines.id);
    store.cancel(escaped.id);
  } finally {
    store.close();
  }
});
