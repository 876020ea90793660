// The audit trail: the newest actions, filtered by principal, host and level (kept in the hash route so a
// filtered view is a link), newest first; "More" adds the next page of older ones below (GET /api/audit's
// Link). "Follow" reads GET /api/audit/stream instead: the same list, then each action as it begins and as
// it completes, updated in place.
import { approvalWords } from '../../src/audit/json.js';
import type { AuditApproval } from '../../src/audit/types.js';
import { printable } from '../../src/command/invisible.js';
import { api, el, errorText, loadPage } from '../api.js';
import { utcTime } from '../format.js';
import type { Page } from './page.js';

interface Action {
  id: number;
  status: 'complete' | 'incomplete';
  level: string;
  time: string;
  principal: string;
  host: string;
  operation: string;
  resource: string | null;
  command: string | null;
  decision: string;
  reason: string | null;
  /** How an ask was answered (approved, refused, expired, cancelled), by whom, through what; null when nothing asked. */
  approval: AuditApproval | null;
  /** The recording the action wrote (an attach, a whole session), to play in the recordings page. */
  recording: string | null;
  exitCode: number | null;
  signal: string | null;
  durationMs: number | null;
  error: string | null;
}

const FILTERS = ['principal', 'host', 'level'] as const;
/** The level filter shows that level and those listed with it (warn: warn, error, deny). */
const LEVELS = [['', 'all'], ['warn', 'warn, error, deny'], ['error', 'error'], ['deny', 'deny']] as const;

function duration(ms: number | null): string {
  if (ms === null) return '';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function cells(a: Action): Array<string | HTMLElement> {
  // An ask says how it was answered: "ask → approved by ops via ntfy".
  const decision = a.approval ? `${a.decision} → ${approvalWords(a.approval)}` : a.decision;
  // Control characters as escapes (\x1b), invisible and reordering ones named: the trail shows what ran as it was.
  const what = el('span', printable(a.command ?? a.resource ?? ''));
  // An ask not approved ended as its refusal: why it asked, then the answer, which the decision says.
  const notApproved = a.approval !== null && a.approval.outcome !== 'approved';
  const note = notApproved ? a.reason : (a.error ?? (a.decision === 'deny' ? a.reason : null));
  const whatCell = el('div');
  // Phones hide the Operation column: there the cell names it (see style.css).
  if (a.operation !== 'exec') whatCell.append(el('small', a.operation, { class: 'operation' }));
  whatCell.append(what);
  if (note) whatCell.append(el('small', printable(note), { class: 'note' }));
  // Phones hide the Decision column too: an answered ask is named here instead.
  if (a.approval) whatCell.append(el('small', decision, { class: 'approval' }));
  if (a.recording) whatCell.append(el('a', 'recording', { href: `#/recordings?${new URLSearchParams({ id: a.recording })}`, class: 'recording-link' }));
  const exit = a.status === 'incomplete' ? 'running' : (a.signal ?? (a.exitCode === null ? '' : String(a.exitCode)));
  return [utcTime(a.time), a.principal, a.host, a.operation, whatCell, decision, exit, duration(a.durationMs)];
}

/** Actions a page holds: GET /api/audit's and the stream's default `limit`. */
const PAGE = 100;

const HEADINGS = ['Time (UTC)', 'Principal', 'Host', 'Operation', 'Command / resource', 'Decision', 'Exit', 'Took'];

export const auditPage: Page = {
  route: 'audit',
  title: 'Audit',
  render(container, params) {
    const form = el('form', undefined, { class: 'filters' });
    const inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();
    for (const name of FILTERS) {
      const label = el('label', name);
      let input: HTMLInputElement | HTMLSelectElement;
      if (name === 'level') {
        input = el('select');
        for (const [value, text] of LEVELS) input.append(el('option', text, { value }));
      } else {
        input = el('input', undefined, { type: 'text', placeholder: 'any' });
      }
      input.name = name;
      input.value = params.get(name) ?? '';
      label.append(input);
      inputs.set(name, input);
      form.append(label);
    }
    const follow = el('input', undefined, { type: 'checkbox', name: 'follow' });
    follow.checked = params.get('follow') === '1';
    const followLabel = el('label', 'follow', { class: 'inline' });
    followLabel.prepend(follow);
    form.append(el('button', 'Show', { type: 'submit' }), followLabel);
    const status = el('p', '', { class: 'status', role: 'status' });
    const error = el('p', '', { class: 'error', role: 'alert' });
    const rows = el('tbody');
    const table = el('table', undefined, { class: 'audit' });
    const head = el('tr');
    for (const h of HEADINGS) head.append(el('th', h));
    table.append(el('thead'), rows);
    table.tHead!.append(head);
    const scroll = el('div', undefined, { class: 'scroll' });
    scroll.append(table);
    const more = el('button', 'More', { type: 'button', class: 'more', hidden: '' });
    container.append(el('h2', 'Audit trail'), form, status, error, scroll, more);

    // The route holds the filters: changing them is a new route, rendered afresh.
    const apply = (): void => {
      const query = new URLSearchParams();
      for (const [name, input] of inputs) if (input.value.trim() !== '') query.set(name, input.value.trim());
      if (follow.checked) query.set('follow', '1');
      location.hash = `#/audit?${query.toString()}`;
    };
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      apply();
    });
    follow.addEventListener('change', apply);

    const shown = new Map<number, HTMLTableRowElement>();
    /** A new action goes on top (an older page's below); a known one (it completed) is updated where it is. */
    const show = (a: Action, where: 'top' | 'bottom' = 'top'): void => {
      const tr = el('tr', undefined, { class: `level-${a.level}`, 'data-id': String(a.id) });
      for (const c of cells(a)) {
        const td = el('td');
        td.append(c);
        tr.append(td);
      }
      const old = shown.get(a.id);
      if (old) old.replaceWith(tr);
      else if (where === 'top') rows.prepend(tr);
      else rows.append(tr);
      shown.set(a.id, tr);
    };

    /** Adds the page at `path` below what is shown; "More" then offers the next one, if the answer links to one. */
    const load = (path: string): Promise<void> =>
      loadPage<Action>(path, more, error, (actions) => {
        // Oldest first: the newest of them goes right under the rows above.
        for (const a of actions.reverse()) show(a, 'bottom');
        if (shown.size === 0) status.textContent = 'No recorded actions match.';
      });

    const query = new URLSearchParams();
    for (const name of FILTERS) if (params.get(name)) query.set(name, params.get(name)!);
    if (!follow.checked) {
      void load(`/api/audit?${query.toString()}`);
      return;
    }
    // EventSource reconnects by itself, sending the last event id: the server resumes from there.
    const source = new EventSource(`/api/audit/stream?${query.toString()}`);
    let backlog = 0;
    let live = false;
    source.addEventListener('message', (event: MessageEvent<string>) => {
      if (!live) backlog++;
      show(JSON.parse(event.data) as Action);
    });
    source.addEventListener('live', () => {
      status.textContent = 'Following: new actions appear at the top.';
      error.textContent = '';
      if (live) return;
      live = true;
      // The stream starts with the newest page and no link: a full one may have older ones under it.
      if (backlog < PAGE) return;
      const oldest = Math.min(...shown.keys());
      more.hidden = false;
      more.onclick = () => void load(`/api/audit?${new URLSearchParams({ ...Object.fromEntries(query), limit: String(PAGE), before: String(oldest) })}`);
    });
    source.addEventListener('overflow', () => (status.textContent = 'Fell behind; catching up…'));
    source.addEventListener('error', () => {
      // A refusal (401, 403) closes the source for good; a dropped connection is retried.
      if (source.readyState === EventSource.CLOSED) {
        void api(`/api/audit?${query.toString()}&limit=1`).then(async (res) => void (error.textContent = res.ok ? 'The stream closed.' : await errorText(res)));
      } else status.textContent = 'Reconnecting…';
    });
    return () => source.close();
  },
};
