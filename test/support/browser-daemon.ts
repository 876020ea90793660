// A daemon serving the web console on a free loopback port, one principal's token, and for the browser
// tests the system Chromium (never a downloaded browser): what those tests start before anything else.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from './browser.js';
import { remux, tempHome } from './cli.js';

/** A daemon of its own: its REMUX_HOME, the console's URL (https://127.0.0.1:PORT/) and one principal's token. */
export interface TestDaemon {
  home: string;
  env: Record<string, string>;
  url: string;
  token: string;
  stop(): Promise<void>;
}

export interface BrowserDaemon extends TestDaemon {
  browser: Browser;
}

/** files: REMUX_HOME file name -> content (policies.yaml, hosts.yaml, …); principal: `remux principal add` name and flags. */
export async function startDaemon(files: Record<string, string>, principal: { name: string; flags: string[] }): Promise<TestDaemon> {
  const h = tempHome();
  for (const [name, content] of Object.entries(files)) writeFileSync(join(h.home, name), content);
  const added = await remux(['principal', 'add', principal.name, ...principal.flags, '--json'], { env: h.env });
  assert.equal(added.code, 0, added.stderr);
  const token = (JSON.parse(added.stdout) as { token: string }).token;
  const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
  assert.equal(started.code, 0, started.stderr);
  const url = /web console and API: (\S+)/.exec(started.stdout)![1]!;
  return {
    home: h.home,
    env: h.env,
    url,
    token,
    async stop() {
      await remux(['daemon', 'stop'], { env: h.env });
      h.remove();
    },
  };
}

/** The same daemon, and the system Chromium. */
export async function startBrowserDaemon(files: Record<string, string>, principal: { name: string; flags: string[] }): Promise<BrowserDaemon> {
  const daemon = await startDaemon(files, principal);
  const browser = await launchChromium();
  return {
    ...daemon,
    browser,
    async stop() {
      await browser.close();
      await daemon.stop();
    },
  };
}
