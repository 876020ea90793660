// Approvals: questions waiting for a person (policy asks, agent prompts), newest first, each with its
// own answers (POST /api/approvals/ID); refreshed every few seconds. #/approvals?id=ID (the link in a
// notification) shows that one first, whatever its state. Only admins answer, never their own question:
// the daemon says why.
import { printable } from '../../src/command/invisible.js';
import { howClosed } from '../../src/notify/closed.js';
import { api, el, errorLine, errorText } from '../api.js';
import { utcTime } from '../format.js';
import type { Page } from './page.js';

interface Option {
  id: string;
  label: string;
  effect: 'allow' | 'deny';
}

interface Approval {
  id: string;
  createdAt: number;
  expiresAt: number;
  principal: string;
  host: string | null;
  what: string;
  reason: string;
  /** Where it came from, for a person (source is a key programs match on). */
  from: string;
  options: Option[];
  status: 'pending' | 'answered' | 'expired' | 'cancelled';
  answer: string | null;
  answeredBy: string | null;
  answeredVia: string | null;
  /** Why remux withdrew it (its asker stopped), when it said. */
  why: string | null;
}

const REFRESH_MS = 3000;

function card(a: Approval, focused: boolean, answer: (a: Approval, option: Option) => void): HTMLElement {
  const section = el('section', undefined, { class: `approval ${a.status}`, 'data-id': a.id });
  if (focused) section.classList.add('focused');
  section.append(el('h3', printable(a.what)));
  // As a decision link's page shows them (table.facts): the question's lines (a prompt's, a multi-line command's) kept.
  const facts = el('table', undefined, { class: 'facts' });
  const rows: Array<[string, string, string?]> = [
    ['Asked by', a.principal],
    ['Host', a.host ?? '-'],
    ['Why', printable(a.reason), 'lines'],
    ['From', a.from],
    ['Asked', utcTime(new Date(a.createdAt).toISOString())],
    [a.status === 'pending' ? 'Expires' : 'Status', a.status === 'pending' ? utcTime(new Date(a.expiresAt).toISOString()) : printable(howClosed(a))],
  ];
  for (const [k, v, cls] of rows) {
    const tr = el('tr');
    tr.append(el('th', k), el('td', v, cls ? { class: cls } : undefined));
    facts.append(tr);
  }
  section.append(facts);
  // An agent session's question (agent:ID; code:NAME in approvals made before remux named both alike): its session.
  const agent = /^(?:agent|code):(.+)$/.exec(a.principal)?.[1];
  if (agent !== undefined) section.append(el('a', 'Open the agent session', { href: `#/agents?${new URLSearchParams({ id: agent })}`, class: 'button' }));
  if (a.status === 'pending') {
    const buttons = el('div', undefined, { class: 'toolbar' });
    for (const option of a.options) {
      const button = el('button', option.label, { type: 'button', ...(option.effect === 'deny' ? { class: 'danger' } : {}) });
      button.addEventListener('click', () => answer(a, option));
      buttons.append(button);
    }
    section.append(buttons);
  }
  return section;
}

export const approvalsPage: Page = {
  route: 'approvals',
  title: 'Approvals',
  render(container, params) {
    const focus = params.get('id');
    const error = errorLine();
    const all = el('input', undefined, { type: 'checkbox', id: 'approvals-all' });
    const toggle = el('label', ' also answered, expired and withdrawn', { for: 'approvals-all' });
    toggle.prepend(all);
    const list = el('div');
    container.append(el('h2', 'Approvals'), toggle, error.node, list);

    const load = async (): Promise<void> => {
      const res = await api(`/api/approvals${all.checked ? '?all=true' : ''}`);
      if (!res.ok) return error.listing(await errorText(res));
      error.listing(null);
      const { approvals } = (await res.json()) as { approvals: Approval[] };
      // The notification's approval first, even once answered, expired or withdrawn (the list then leaves it
      // out): whoever opens its link learns how it ended.
      let linked = approvals.find((a) => a.id === focus);
      if (focus !== null && linked === undefined) {
        const one = await api(`/api/approvals/${encodeURIComponent(focus)}`);
        if (one.ok) linked = ((await one.json()) as { approval: Approval }).approval;
      }
      const ordered = [...(linked ? [linked] : []), ...approvals.filter((a) => a.id !== focus)];
      list.replaceChildren(...(ordered.length > 0 ? ordered.map((a) => card(a, a.id === focus, answer)) : [el('p', 'Nothing is waiting for an answer.', { class: 'muted' })]));
    };
    const answer = (a: Approval, option: Option): void => {
      void (async () => {
        const res = await api(`/api/approvals/${encodeURIComponent(a.id)}`, { method: 'POST', body: JSON.stringify({ option: option.id }) });
        error.action(res.ok ? null : await errorText(res));
        await load();
      })();
    };
    all.addEventListener('change', () => void load());
    void load();
    const timer = window.setInterval(() => void load(), REFRESH_MS);
    return () => window.clearInterval(timer);
  },
};
