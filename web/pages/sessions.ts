// tmux sessions across the hosts this principal may use: hosts -> tmux users -> sessions, from the
// daemon's inventory cache (Refresh asks the hosts now). Create with an optional startup command (the
// policy decides), kill behind typing the name, attach interactively or read-only in the terminal page.
import { api, el, errorLine, errorText, mayInteract } from '../api.js';
import { utcTime } from '../format.js';
import type { Page } from './page.js';

interface TmuxSession {
  name: string;
  windows: number;
  created: string;
  activity: string;
  attached: number;
}
type UserSessions = { user: string; state: 'ok' | 'no_server' | 'sudo_refused' | 'error'; detail?: string; sessions: TmuxSession[] };
interface HostSessions {
  host: string;
  checkedAt: string;
  error: string | null;
  users: UserSessions[];
}

const STATE: Record<UserSessions['state'], string> = {
  ok: '',
  no_server: 'no sessions, no tmux server running',
  sudo_refused: 'sudo refused',
  error: 'tmux failed',
};

/** The names remux acts on (sessions made outside it may have others: listed, but no button can act on them). */
const SESSION_NAME = /^[A-Za-z0-9_-]{1,64}$/;

function terminalLink(host: string, user: string, name: string, readOnly: boolean): string {
  return `#/terminal?${new URLSearchParams({ host, user, name, readOnly: String(readOnly) })}`;
}

export const sessionsPage: Page = {
  route: 'sessions',
  title: 'Sessions',
  render(container) {
    const error = errorLine();
    const list = el('div', undefined, { class: 'sessions' });
    const refresh = el('button', 'Refresh', { type: 'button' });
    const checked = el('span', '', { class: 'muted' });

    const create = el('form', undefined, { class: 'create', 'aria-label': 'new session' });
    const where = el('select', undefined, { name: 'where', 'aria-label': 'host and user' });
    const name = el('input', undefined, { name: 'name', placeholder: 'name', required: '', pattern: '[A-Za-z0-9_\\-]{1,64}', 'aria-label': 'session name', autocomplete: 'off' });
    // A name off the pattern is refused saying what a name holds, not the browser's "Please match the requested format."
    name.addEventListener('input', () => name.setCustomValidity(name.validity.patternMismatch ? 'A session name holds letters, digits, _ and - (at most 64).' : ''));
    const command = el('input', undefined, { name: 'command', placeholder: 'command (optional)', 'aria-label': 'startup command', autocomplete: 'off' });
    const policy = el('input', undefined, { name: 'policy', placeholder: "policy (the principal's)", 'aria-label': 'policy', autocomplete: 'off' });
    create.append(where, name, command, policy, el('button', 'Create', { type: 'submit' }));
    // A principal that may only watch is offered nothing that would be refused.
    const interactive = mayInteract();

    const head = el('div', undefined, { class: 'toolbar' });
    head.append(el('h2', 'Sessions'), refresh, checked);
    container.append(head, create, error.node, list);

    const load = async (fresh: boolean): Promise<void> => {
      refresh.disabled = true;
      const res = await api(`/api/sessions${fresh ? '?fresh=true' : ''}`);
      refresh.disabled = false;
      if (!res.ok) {
        error.listing(await errorText(res));
        list.replaceChildren();
        create.hidden = true;
        return;
      }
      error.listing(null);
      render(((await res.json()) as { hosts: HostSessions[] }).hosts);
    };

    const post = async (path: string, body: object): Promise<boolean> => {
      const res = await api(path, { method: 'POST', body: JSON.stringify(body) });
      error.action(res.ok ? null : await errorText(res));
      return res.ok;
    };

    const killForm = (host: string, user: string, s: TmuxSession): HTMLFormElement => {
      const form = el('form', undefined, { class: 'kill', 'aria-label': `kill ${s.name}` });
      const confirm = el('input', undefined, { placeholder: `type ${s.name} to kill`, 'aria-label': `type ${s.name} to confirm`, autocomplete: 'off' });
      const go = el('button', 'Kill', { type: 'submit', class: 'danger' });
      go.disabled = true;
      confirm.addEventListener('input', () => (go.disabled = confirm.value !== s.name));
      form.append(confirm, go);
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        void post('/api/sessions/kill', { host, user, name: s.name, confirm: confirm.value }).then((ok) => (ok ? load(false) : undefined));
      });
      return form;
    };

    const sessionRow = (host: string, user: string, s: TmuxSession): HTMLTableRowElement => {
      const tr = el('tr');
      tr.dataset.session = s.name;
      // data-label: the column's name, shown beside the value where the table becomes cards (phones).
      tr.append(
        el('td', s.name),
        el('td', String(s.windows), { 'data-label': 'windows' }),
        el('td', utcTime(s.created), { 'data-label': 'created' }),
        el('td', utcTime(s.activity), { 'data-label': 'activity' }),
        el('td', s.attached > 0 ? String(s.attached) : '—', { 'data-label': 'attached' }),
      );
      const actions = el('td', undefined, { class: 'actions' });
      tr.append(actions);
      if (!SESSION_NAME.test(s.name)) {
        actions.append(el('span', 'not a name remux acts on', { class: 'muted', title: 'made outside remux: remux attaches to and kills only sessions named with A-Z a-z 0-9 _ - (at most 64)' }));
        return tr;
      }
      const watch = el('a', 'Watch', { href: terminalLink(host, user, s.name, true), class: 'button' });
      if (!interactive) {
        actions.append(watch);
        return tr;
      }
      const kill = el('button', 'Kill…', { type: 'button', class: 'danger' });
      kill.addEventListener('click', () => {
        const form = killForm(host, user, s);
        kill.replaceWith(form);
        form.querySelector('input')!.focus();
      });
      actions.append(el('a', 'Attach', { href: terminalLink(host, user, s.name, false), class: 'button' }), watch, kill);
      return tr;
    };

    const render = (hosts: HostSessions[]): void => {
      const chosen = where.value;
      where.replaceChildren();
      list.replaceChildren();
      const times = hosts.map((h) => h.checkedAt).sort();
      checked.textContent = times.length ? `checked ${utcTime(times[0]!)}` : '';
      for (const h of hosts) {
        const section = el('section', undefined, { class: 'host' });
        section.dataset.host = h.host;
        section.append(el('h3', h.host));
        if (h.error !== null) section.append(el('p', `unreachable: ${h.error}`, { class: 'state error' }));
        for (const u of h.users) {
          const block = el('div', undefined, { class: `user state-${u.state}` });
          block.dataset.user = u.user;
          block.append(el('h4', u.user));
          if (u.state === 'ok' && u.sessions.length === 0) block.append(el('p', 'no sessions', { class: 'state no_server' }));
          if (u.state !== 'ok') block.append(el('p', `${STATE[u.state]}${u.detail ? `: ${u.detail}` : ''}`, { class: `state ${u.state}` }));
          if (u.state === 'ok' || u.state === 'no_server') where.append(el('option', `${u.user}@${h.host}`, { value: JSON.stringify([h.host, u.user]) }));
          if (u.sessions.length > 0) {
            const table = el('table');
            const headRow = el('tr');
            for (const t of ['Name', 'Windows', 'Created', 'Activity', 'Attached', '']) headRow.append(el('th', t));
            table.append(el('thead'), el('tbody'));
            table.tHead!.append(headRow);
            for (const s of u.sessions) table.tBodies[0]!.append(sessionRow(h.host, u.user, s));
            block.append(table);
          }
          section.append(block);
        }
        list.append(section);
      }
      if ([...where.options].some((o) => o.value === chosen)) where.value = chosen;
      create.hidden = !interactive || where.options.length === 0;
    };

    create.addEventListener('submit', (e) => {
      e.preventDefault();
      const [host, user] = JSON.parse(where.value) as [string, string];
      const body = { host, user, name: name.value, ...(command.value.trim() ? { command: command.value } : {}), ...(policy.value.trim() ? { policy: policy.value.trim() } : {}) };
      void post('/api/sessions', body).then((ok) => {
        if (!ok) return;
        name.value = '';
        command.value = '';
        return load(false);
      });
    });
    refresh.addEventListener('click', () => void load(true));
    void load(false);
  },
};
