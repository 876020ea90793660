// The console's first page: log in with a token (the daemon answers with an HttpOnly session cookie
// and a CSRF token), list the hosts this principal may use, log out. Served from the daemon's own
// origin under a CSP without inline code, so everything here is wired up from this file.

interface Me {
  name: string;
  csrfToken: string | null;
}

interface HostRow {
  name: string;
  transport: string;
  labels: Record<string, string>;
  connected: boolean;
  enforcement: { mode: string; detail: string };
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

let csrfToken: string | null = null;

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.body !== undefined) headers.set('content-type', 'application/json');
  if (csrfToken && init.method && init.method !== 'GET') headers.set('x-csrf-token', csrfToken);
  return fetch(path, { ...init, headers, credentials: 'same-origin' });
}

async function errorText(res: Response): Promise<string> {
  const body = (await res.json().catch(() => null)) as { message?: string } | null;
  return body?.message ?? `${res.status} ${res.statusText}`;
}

function showLogin(): void {
  csrfToken = null;
  $('who').textContent = '';
  $('logout').hidden = true;
  $('hosts').hidden = true;
  $('login').hidden = false;
  $<HTMLInputElement>('token').focus();
}

async function showConsole(me: Me): Promise<void> {
  csrfToken = me.csrfToken;
  $('who').textContent = me.name;
  $('logout').hidden = false;
  $('login').hidden = true;
  $('hosts').hidden = false;
  const rows = $('host-rows');
  rows.replaceChildren();
  $('hosts-error').textContent = '';
  const res = await api('/api/hosts');
  if (!res.ok) {
    $('hosts-error').textContent = await errorText(res);
    return;
  }
  for (const h of (await res.json()) as HostRow[]) {
    const tr = document.createElement('tr');
    const labels = Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(', ');
    for (const text of [h.name, h.transport, labels, h.connected ? 'yes' : 'no', `${h.enforcement.mode} (${h.enforcement.detail})`]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    rows.append(tr);
  }
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
      await showConsole((await res.json()) as Me);
    })();
  });
  $('logout').addEventListener('click', () => {
    void api('/api/logout', { method: 'POST' }).then(showLogin);
  });
  const me = await api('/api/me');
  if (me.ok) await showConsole((await me.json()) as Me);
  else showLogin();
}

void start();
