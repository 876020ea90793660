// A daemon serving the web console on a free loopback port, one principal's token, and the system
// Chromium (never a downloaded browser): what the console's browser tests start before anything else.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from './browser.js';
import { remux, tempHome } from './cli.js';

export interface BrowserDaemon {
  home: string;
  env: Record<string, string>;
  /** The console's URL (https://127.0.0.1:PORT/). */
  url: string;
  token: string;
  browser: Browser;
  stop(): Promise<void>;
}

/** files: REMUX_HOME file name -> content (policies.yaml, hosts.yaml, …); principal: `remux principal add` name and flags. */
export async function startBrowserDaemon(files: Record<string, string>, principal: { name: string; flags: string[] }): Promise<BrowserDaemon> {
  const h = tempHome();
  for (const [name, content] of Object.entries(files)) writeFileSync(join(h.home, name), content);
  const added = await remux(['principal', 'add', principal.name, ...principal.flags, '--json'], { env: h.env });
  assert.equal(added.code, 0, added.stderr);
  const token = (JSON.parse(added.stdout) as { token: string }).token;
  const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
  assert.equal(started.code, 0, started.stderr);
  const url = /web console and API: (\S+)/.exec(started.stdout)![1]!;
  const browser = await launchChromium();
  return {
    home: h.home,
    env: h.env,
    url,
    token,
    browser,
    async stop() {
      await browser.close();
      await remux(['daemon', 'stop'], { env: h.env });
      h.remove();
    },
  };
}
