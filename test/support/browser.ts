// The system Chromium for browser tests (never a downloaded browser), in a network namespace of its own.
//
// Why: Chromium watches its namespace's interfaces over netlink and fails every request in flight with
// ERR_NETWORK_CHANGED when an address appears or goes. The fleet tests running alongside add and remove
// an interface in the root namespace, which made page loads fail at random. In its own namespace
// Chromium sees no such change; it reaches the test's loopback servers through an HTTP proxy: socat
// inside the namespace carries the proxy's port to a unix socket, where this process answers CONNECT
// (wss and https) and plain requests by connecting to 127.0.0.1 in the root namespace. URLs, Host and
// Origin stay exactly what the page would use without the proxy. The proxy also listens on the same
// port number on 127.0.0.1 out here, for Playwright's own requests (context.request), which use the
// browser's proxy setting from this namespace.
// Without root (no `unshare --net`), Chromium runs as it is.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!canIsolate()) return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rmx-chromium-'));
  const socket = path.join(dir, 'proxy.sock');
  const proxy = await startLoopbackProxy(socket);
  const port = (proxy.tcp.address() as net.AddressInfo).port;
  const wrapper = path.join(dir, 'chromium');
  // socat gets no pipe fds (3 and 4 are Playwright's CDP pipe); it ends when Chromium does, and
  // Playwright's kill of the process group takes it too.
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  writeFileSync(
    wrapper,
    `#!/bin/sh
exec unshare --net -- /bin/sh -c '
ip link set lo up || exit 1
socat TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:${socket} 3>&- 4>&- &
proxy=$!
for i in $(seq 100); do grep -q ":${hexPort} " /proc/net/tcp && break; sleep 0.01; done
${CHROMIUM} "$@"
status=$?
kill $proxy
exit $status' chromium "$@"
`,
  );
  chmodSync(wrapper, 0o755);
  const browser = await chromium
    .launch({ executablePath: wrapper, args: ['--no-sandbox'], proxy: { server: `http://127.0.0.1:${port}` } })
    .catch((err: unknown) => {
      proxy.close();
      rmSync(dir, { recursive: true, force: true });
      throw err;
    });
  browser.on('disconnected', () => {
    proxy.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return browser;
}

let isolationWorks: boolean | undefined;
function canIsolate(): boolean {
  isolationWorks ??= spawnSync('unshare', ['--net', '--', 'ip', 'link', 'set', 'lo', 'up']).status === 0 && spawnSync('socat', ['-V']).status === 0;
  return isolationWorks;
}

/**
 * An HTTP proxy that only reaches 127.0.0.1 (CONNECT for TLS and WebSocket, plain requests too), on a
 * unix socket and on a free loopback port.
 */
async function startLoopbackProxy(socket: string): Promise<{ tcp: http.Server; close(): void }> {
  const forward = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const target = new URL(req.url ?? '/');
    if (target.hostname !== '127.0.0.1') return void res.writeHead(403).end('the test proxy reaches 127.0.0.1 only\n');
    const upstream = http.request({ host: '127.0.0.1', port: target.port, path: target.pathname + target.search, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
  const tunnel = (req: http.IncomingMessage, client: net.Socket, head: Buffer): void => {
    const m = /^127\.0\.0\.1:(\d+)$/.exec(req.url ?? '');
    if (!m) return void client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
    const upstream = net.connect(Number(m[1]), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    const drop = (): void => {
      upstream.destroy();
      client.destroy();
    };
    upstream.on('error', drop);
    client.on('error', drop);
  };
  const [unix, tcp] = [0, 1].map(() => http.createServer(forward).on('connect', tunnel)) as [http.Server, http.Server];
  await Promise.all([
    new Promise<void>((resolve, reject) => unix.once('error', reject).listen(socket, resolve)),
    new Promise<void>((resolve, reject) => tcp.once('error', reject).listen(0, '127.0.0.1', resolve)),
  ]);
  return {
    tcp,
    close() {
      unix.close();
      tcp.close();
    },
  };
}

/**
 * A new browser context (phone-like, touch, below 500 px on its short side: upright or sideways) logged in to the console at `url` with `token`,
 * once the page names `who`. Console errors (but the 401 of the first /api/me before logging in, which
 * Chromium logs itself) and page errors go into `problems`.
 */
export async function loggedIn(
  browser: Browser,
  site: { url: string; token: string; who: string; problems: string[] },
  viewport = { width: 1280, height: 800 },
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport, ...(Math.min(viewport.width, viewport.height) < 500 ? { isMobile: true, hasTouch: true } : {}) });
  const page = await context.newPage();
  page.on('console', (m) => void (m.type() === 'error' && !/status of 401/.test(m.text()) && site.problems.push(m.text())));
  page.on('pageerror', (e) => site.problems.push(e.message));
  await page.goto(site.url);
  await page.locator('#token').fill(site.token);
  await page.locator('#login button[type=submit]').click();
  await page.locator('#who', { hasText: site.who }).waitFor();
  return { context, page };
}
