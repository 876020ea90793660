// The console's shell: log in with a token (the daemon answers with an HttpOnly session cookie and a
// CSRF token), then pages under hash routes (#/hosts, …), each a module in pages/. Served from the
// daemon's own origin under a CSP without inline code, so everything is wired up from here.
import { api, errorText, setMe, whenLoggedOut, type Me } from './api.js';
import { notificationsSupported, watchForNotifications } from './notifications.js';
import { agentsPage } from './pages/agents.js';
import { approvalsPage } from './pages/approvals.js';
import { auditPage } from './pages/audit.js';
import { hostsPage } from './pages/hosts.js';
import { recordingsPage } from './pages/recordings.js';
import { runPage } from './pages/run.js';
import { sessionsPage } from './pages/sessions.js';
import { terminalPage } from './pages/terminal.js';
import type { Page } from './pages/page.js';

/** Every page; the first is the default. Pages register here and nowhere else. */
const PAGES: Page[] = [hostsPage, sessionsPage, agentsPage, terminalPage, approvalsPage, auditPage, runPage, recordingsPage];

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
let leave: (() => void) | void = undefined;
let stopNotifications: (() => void) | null = null;

function showLogin(why = ''): void {
  setMe(null);
  $('login-error').textContent = why;
  stopNotifications?.();
  stopNotifications = null;
  $('notify').hidden = true;
  leave?.();
  leave = undefined;
  $('who').textContent = '';
  $('logout').hidden = true;
  $('nav').hidden = true;
  $('page').replaceChildren();
  $('login').hidden = false;
  $<HTMLInputElement>('token').focus();
}

function route(): void {
  const [name = '', query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const page = PAGES.find((p) => p.route === name) ?? PAGES[0]!;
  leave?.();
  const container = $('page');
  container.replaceChildren();
  for (const link of $('nav').querySelectorAll('a')) link.toggleAttribute('aria-current', link.dataset.route === page.route);
  leave = page.render(container, new URLSearchParams(query));
}

/** Watches for what to notify about once the browser allows notifications; asking needs a click. */
function notifyWhenGranted(): void {
  stopNotifications?.();
  const granted = notificationsSupported() && Notification.permission === 'granted';
  stopNotifications = granted ? watchForNotifications() : null;
  $('notify').hidden = !notificationsSupported() || Notification.permission !== 'default';
}

function showConsole(me: Me): void {
  setMe(me);
  $('who').textContent = me.name;
  $('logout').hidden = false;
  $('login').hidden = true;
  const nav = $('nav');
  nav.replaceChildren();
  for (const page of PAGES.filter((p) => p.title !== undefined)) {
    const link = document.createElement('a');
    link.href = `#/${page.route}`;
    link.textContent = page.title!;
    link.dataset.route = page.route;
    nav.append(link);
  }
  nav.hidden = false;
  notifyWhenGranted();
  route();
}

async function start(): Promise<void> {
  $('login').addEventListener('submit', (event) => {
    event.preventDefault();
    void (async () => {
      const input = $<HTMLInputElement>('token');
      const res = await api('/api/login', { method: 'POST', body: JSON.stringify({ token: input.value }) });
      input.value = '';
      if (!res.ok) {
        $('login-error').textContent = await errorText(res);
        return;
      }
      $('login-error').textContent = '';
      showConsole((await res.json()) as Me);
    })();
  });
  $('notify').addEventListener('click', () => {
    void Notification.requestPermission().then(notifyWhenGranted);
  });
  $('logout').addEventListener('click', () => {
    void api('/api/logout', { method: 'POST' }).then(() => showLogin());
  });
  // After logging in again the same page shows (route() keeps the hash): a terminal attaches again.
  whenLoggedOut(showLogin);
  window.addEventListener('hashchange', () => {
    if ($('login').hidden) route();
  });
  const me = await api('/api/me');
  if (me.ok) showConsole((await me.json()) as Me);
  else showLogin();
}

void start();
