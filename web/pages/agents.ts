// Coding-agent sessions (`remux code start`): each with its state as the daemon's watcher sees it
// (working, waiting for input, permission prompt, idle, rate-limited, exited), workspace, branch and
// sandbox; attach or watch it in the terminal page. #/agents?id=ID (linked from its approvals) shows
// that session first, marked. Refreshed every few seconds.
import { api, el, errorText } from '../api.js';
import { utcTime } from '../format.js';
import type { Page } from './page.js';

interface AgentSession {
  id: string;
  name: string;
  agent: string;
  state: string;
  /** The agent's exit status when it exited by itself; its last screen is then at /api/agents/ID/log. */
  exitStatus: number | null;
  workspace: string;
  branch: string | null;
  sandbox: 'srt' | 'docker' | 'none';
  created: string;
  error: string | null;
  attach: { host: string; name: string };
}

const REFRESH_MS = 3000;

/** The watcher's words for people. */
const STATE: Record<string, string> = {
  starting: 'starting',
  running: 'running',
  working: 'working',
  waiting: 'waiting for input',
  permission: 'permission prompt',
  idle: 'idle',
  rate_limited: 'rate-limited',
  exited: 'exited',
  failed: 'failed',
};

function row(s: AgentSession, focused: boolean): HTMLTableRowElement {
  const tr = el('tr', undefined, { 'data-agent': s.id });
  if (focused) tr.classList.add('focused');
  const state = el('td', undefined, { 'data-label': 'state' });
  state.append(el('span', s.state === 'exited' && s.exitStatus !== null ? `exited (status ${s.exitStatus})` : (STATE[s.state] ?? s.state), { class: `agent-state ${s.state}` }));
  if (s.error) state.append(el('div', s.error, { class: 'muted' }));
  tr.append(
    el('td', `${s.name} (${s.id})`),
    el('td', s.agent, { 'data-label': 'agent' }),
    state,
    el('td', s.workspace, { 'data-label': 'workspace', class: 'path' }),
    el('td', s.branch ?? '—', { 'data-label': 'branch' }),
    el('td', s.sandbox === 'none' ? 'none (unsandboxed)' : s.sandbox, { 'data-label': 'sandbox' }),
    el('td', utcTime(s.created), { 'data-label': 'created' }),
  );
  const actions = el('td', undefined, { class: 'actions' });
  if (s.state !== 'exited' && s.state !== 'failed') {
    const link = (readOnly: boolean): string => `#/terminal?${new URLSearchParams({ host: s.attach.host, name: s.attach.name, readOnly: String(readOnly) })}`;
    actions.append(el('a', 'Attach', { href: link(false), class: 'button' }), el('a', 'Watch', { href: link(true), class: 'button' }));
  } else if (s.exitStatus !== null) {
    actions.append(el('a', 'Last screen', { href: `/api/agents/${encodeURIComponent(s.id)}/log`, target: '_blank', rel: 'noopener', class: 'button' }));
  }
  tr.append(actions);
  return tr;
}

export const agentsPage: Page = {
  route: 'agents',
  title: 'Agents',
  render(container, params) {
    const focus = params.get('id');
    const error = el('p', '', { class: 'error', role: 'alert' });
    const all = el('input', undefined, { type: 'checkbox', id: 'agents-all' });
    const toggle = el('label', ' also exited', { for: 'agents-all' });
    toggle.prepend(all);
    const list = el('div', undefined, { class: 'agents' });
    container.append(el('h2', 'Agents'), toggle, error, list);
    let scrolled = false;

    const load = async (): Promise<void> => {
      const res = await api('/api/agents');
      if (!res.ok) return void (error.textContent = await errorText(res));
      error.textContent = '';
      const { sessions } = (await res.json()) as { sessions: AgentSession[] };
      const isFocus = (s: AgentSession): boolean => s.id === focus || s.name === focus;
      const shown = sessions.filter((s) => all.checked || isFocus(s) || (s.state !== 'exited' && s.state !== 'failed'));
      if (shown.length === 0) return void list.replaceChildren(el('p', 'No agent sessions. Start one with: remux code start DIR', { class: 'muted' }));
      const table = el('table');
      const head = el('tr');
      for (const t of ['Session', 'Agent', 'State', 'Workspace', 'Branch', 'Sandbox', 'Created', '']) head.append(el('th', t));
      table.append(el('thead'), el('tbody'));
      table.tHead!.append(head);
      for (const s of [...shown.filter(isFocus), ...shown.filter((s) => !isFocus(s))]) table.tBodies[0]!.append(row(s, isFocus(s)));
      list.replaceChildren(table);
      if (!scrolled) table.querySelector('tr.focused')?.scrollIntoView({ block: 'center' });
      scrolled = true;
    };
    all.addEventListener('change', () => void load());
    void load();
    const timer = window.setInterval(() => void load(), REFRESH_MS);
    return () => window.clearInterval(timer);
  },
};
