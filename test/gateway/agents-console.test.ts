// Agent sessions in the console, in the system Chromium against a real daemon, real tmux (a private
// agents socket) and a `remux code` session running the fake Claude-like permission prompt: the state
// the daemon's watcher sees, workspace, branch and sandbox; an approval's link to its session; attach
// and answer the prompt in the terminal, and the state follows; phone layout; out-of-scope refusal.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, loggedIn } from '../support/browser.js';
import { REPO_ROOT, remux } from '../support/cli.js';
import { startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';
import { endTmuxServer } from '../support/tmux.js';

const FAKE_PROMPT = join(REPO_ROOT, 'test', 'agents', 'fixtures', 'fake-prompt.mjs');
const FAKE_AGENT = join(REPO_ROOT, 'test', 'agents', 'fixtures', 'fake-agent.mjs');

describe('agent sessions in the console', { timeout: 180_000 }, () => {
  const socket = `remux-agents-console-${process.pid}`;
  const work = realpathSync(mkdtempSync(join(tmpdir(), 'remux-agents-console-')));
  let d: ConsoleDaemon;
  let browser: Browser;
  let id = '';
  const problems: string[] = [];

  before(async () => {
    execFileSync('git', ['-C', work, 'init', '-q', '-b', 'feature-login']);
    execFileSync('git', ['-C', work, '-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-q', '--allow-empty', '-m', 'init']);
    [d, browser] = await Promise.all([
      startConsoleDaemon({ boss: ['--admin'], ops: ['--hosts', 'box', '--users', '*'] }, '', { REMUX_TMUX_SOCKET: socket }),
      launchChromium(),
    ]);
    const made = await remux(['code', 'start', work, '--no-attach', '--sandbox', 'none', '-n', 'fixer', '--agent', `node ${FAKE_PROMPT} 'npm test'`], { env: { REMUX_HOME: d.home, REMUX_TMUX_SOCKET: socket }, via: 'node' });
    assert.equal(made.code, 0, made.stderr);
    id = made.stdout.split(' ')[0]!;
  });
  after(async () => {
    await browser?.close();
    // The agent's session first: what runs in it (its hooks) writes into the daemon's home, which stop() removes.
    endTmuxServer(socket);
    await d?.stop();
    rmSync(work, { recursive: true, force: true });
    assert.deepEqual(problems, []);
  });

  const login = async (viewport: { width: number; height: number }): Promise<Page> =>
    (await loggedIn(browser, { url: d.url, token: d.tokens.boss!, who: 'boss', problems }, viewport)).page;

  test('state, workspace, branch, sandbox; the approval links to the session; attach, answer, the state follows', async () => {
    const page = await login({ width: 1280, height: 800 });
    await page.goto(`${d.url}#/agents`);
    const row = page.locator(`tr[data-agent="${id}"]`);
    await row.locator('.agent-state', { hasText: 'permission prompt' }).waitFor({ timeout: 15_000 });
    assert.match(await row.innerText(), new RegExp(`fixer \\(${id}\\)`));
    assert.equal(await row.locator('td[data-label=workspace]').innerText(), work);
    assert.equal(await row.locator('td[data-label=branch]').innerText(), 'feature-login');
    assert.equal(await row.locator('td[data-label=sandbox]').innerText(), 'none (unsandboxed)');
    await page.screenshot({ path: '/tmp/agents-desktop.png', fullPage: true });

    // The watcher's approval for the prompt: from the session by name and what it runs; its card leads to
    // the session, shown first and marked.
    await page.goto(`${d.url}#/approvals`);
    const from = page.locator('section.approval').first().locator('tr', { hasText: 'From' }).locator('td');
    assert.equal(await from.innerText(), `the screen of agent session fixer: node ${FAKE_PROMPT} 'npm test'`);
    await page.screenshot({ path: '/tmp/agents-approval.png', fullPage: true });
    await page.getByRole('link', { name: 'Open the agent session' }).first().click();
    await page.locator('tr.focused[data-agent]').waitFor();
    assert.ok(page.url().endsWith(`#/agents?id=${id}`), page.url());
    assert.equal(await page.locator('tr.focused').getAttribute('data-agent'), id);

    // Attach on the agents' tmux server and answer the prompt as its keys expect.
    await page.locator(`tr[data-agent="${id}"]`).getByRole('link', { name: 'Attach' }).click();
    await page.locator('.xterm-rows', { hasText: 'Do you want to proceed?' }).waitFor();
    await page.locator('.xterm-helper-textarea').focus();
    await page.keyboard.press('1');
    await page.locator('.xterm-rows', { hasText: /chosen: 1 \(Yes\) for npm test/ }).waitFor();
    await page.goto(`${d.url}#/agents`);
    await page.locator(`tr[data-agent="${id}"] .agent-state`, { hasText: 'waiting for input' }).waitFor({ timeout: 15_000 });
  });

  test('phone layout: the session as a card, its state and actions visible', async () => {
    const page = await login({ width: 390, height: 844 });
    await page.goto(`${d.url}#/agents`);
    const row = page.locator(`tr[data-agent="${id}"]`);
    await row.locator('.agent-state').waitFor();
    assert.ok(await row.getByRole('link', { name: 'Attach' }).isVisible());
    const box = (await row.boundingBox())!;
    assert.ok(box.width <= 390, `the card fits the phone (${box.width}px)`);
    await page.screenshot({ path: '/tmp/agents-phone.png', fullPage: true });
  });

  test('browser notifications while the tab is open: a new approval, an agent coming to a permission prompt', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    await context.grantPermissions(['notifications'], { origin: d.origin });
    // The real Notification, recorded: what the console shows, not whether the desktop displays it.
    await context.addInitScript(`{
      const Real = window.Notification;
      window.notes = [];
      window.Notification = class extends Real {
        constructor(title, options) {
          super(title, options);
          window.notes.push({ title, body: options?.body, tag: options?.tag });
        }
        static get permission() { return Real.permission; }
      };
    }`);
    const page = await context.newPage();
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(d.url);
    await page.locator('#token').fill(d.tokens.boss!);
    await page.locator('#login button[type=submit]').click();
    await page.locator('#who', { hasText: 'boss' }).waitFor();
    assert.equal(await page.locator('#notify').isHidden(), true, 'already granted: nothing to ask');
    await page.waitForTimeout(500); // the first look: what is there already is not announced
    const made = await remux(['code', 'start', work, '--no-attach', '--sandbox', 'none', '-n', 'second', '--agent', `node ${FAKE_PROMPT} 'rm -rf dist'`], { env: { REMUX_HOME: d.home, REMUX_TMUX_SOCKET: socket }, via: 'node' });
    assert.equal(made.code, 0, made.stderr);
    const second = made.stdout.split(' ')[0]!;
    const notes = async (): Promise<Array<{ title: string; body?: string; tag?: string }>> => page.evaluate('window.notes');
    for (let i = 0; i < 150 && (await notes()).length < 2; i++) await page.waitForTimeout(100);
    const shown = await notes();
    assert.ok(shown.some((n) => n.title === 'Approval needed' && n.body?.startsWith(`agent:${second} wants to`) === true), JSON.stringify(shown));
    assert.ok(shown.some((n) => n.title === 'second: permission prompt' && n.tag === `agent-${second}`), JSON.stringify(shown));
    assert.equal(shown.some((n) => n.tag === `agent-${id}`), false, 'the session already there when the tab opened is not announced');
    await context.close();
  });

  test('a principal whose hosts do not match "agents" is refused', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const res = await context.request.get(`${d.url}api/agents`, { headers: { authorization: `Bearer ${d.tokens.ops!}` } });
    assert.equal(res.status(), 403);
    assert.match(((await res.json()) as { message: string }).message, /agent sessions run on host "agents"/);
    const boss = await context.request.get(`${d.url}api/agents`, { headers: { authorization: `Bearer ${d.tokens.boss!}` } });
    assert.equal(((await boss.json()) as { sessions: Array<{ id: string }> }).sessions[0]?.id, id);
    const log = await context.request.get(`${d.url}api/agents/${id}/log`, { headers: { authorization: `Bearer ${d.tokens.ops!}` } });
    assert.equal(log.status(), 403);
    await context.close();
  });

  test('an agent that exited by itself: its status, and its last screen behind a link', async () => {
    const made = await remux(['code', 'start', work, '--no-attach', '--sandbox', 'none', '-n', 'leaver', '--agent', `node ${FAKE_AGENT} --exit 4`], { env: { REMUX_HOME: d.home, REMUX_TMUX_SOCKET: socket }, via: 'node' });
    assert.equal(made.code, 0, made.stderr);
    const leaver = made.stdout.split(' ')[0]!;
    const page = await login({ width: 1280, height: 800 });
    await page.goto(`${d.url}#/agents`);
    await page.getByLabel('also exited').check();
    const row = page.locator(`tr[data-agent="${leaver}"]`);
    await row.locator('.agent-state', { hasText: 'exited (status 4)' }).waitFor({ timeout: 15_000 });
    await page.screenshot({ path: '/tmp/agents-exited.png', fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    assert.ok(await row.getByRole('link', { name: 'Last screen' }).isVisible());
    await page.screenshot({ path: '/tmp/agents-exited-phone.png', fullPage: true });
    const [popup] = await Promise.all([page.waitForEvent('popup'), row.getByRole('link', { name: 'Last screen' }).click()]);
    await popup.waitForLoadState();
    assert.match(await popup.locator('body').innerText(), /FAKE-AGENT cannot go on: leaving with status 4\n[\s\S]*exited \(status 4\)/);
    // One still running has none yet; an unknown id is unknown.
    const running = await page.request.get(`${d.url}api/agents/${id}/log`);
    assert.equal(running.status(), 404);
    assert.match(((await running.json()) as { message: string }).message, /has no saved screen: it is running, or it was killed/);
    assert.equal((await page.request.get(`${d.url}api/agents/nope/log`)).status(), 404);
  });
});
