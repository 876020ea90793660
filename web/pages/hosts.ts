// Hosts this principal may use: where each is, labels, connection (and its last error), enforcement
// (and a warning about it, as `remux hosts list` gives on stderr).
import { enforcementText, hostAddress, type Enforcement } from '../../src/hosts/describe.js';
import { api, el, errorText } from '../api.js';
import type { Page } from './page.js';

interface HostRow {
  name: string;
  transport: string;
  address: string | null;
  user: string | null;
  port: number | null;
  labels: Record<string, string>;
  connected: boolean;
  lastError: string | null;
  enforcement: Enforcement;
}

/** A cell: its text, then a note under it when there is one (a failure, a warning). */
function cell(label: string, text: string, note: string | null = null, noteClass = ''): HTMLTableCellElement {
  // data-label: the column's name, shown beside the value where the table becomes cards (phones).
  const td = el('td', text, { 'data-label': label });
  if (note !== null) td.append(el('small', note, { class: noteClass }));
  return td;
}

export const hostsPage: Page = {
  route: 'hosts',
  title: 'Hosts',
  render(container) {
    const error = el('p', '', { class: 'error', role: 'alert' });
    const rows = el('tbody');
    const table = el('table', undefined, { class: 'hosts' });
    const head = el('tr');
    for (const h of ['Name', 'Address', 'Labels', 'Connected', 'Enforcement']) head.append(el('th', h));
    table.append(el('thead'), rows);
    table.tHead!.append(head);
    container.append(el('h2', 'Hosts'), error, table);
    void (async () => {
      const res = await api('/api/hosts');
      if (!res.ok) return void (error.textContent = await errorText(res));
      for (const h of (await res.json()) as HostRow[]) {
        const tr = el('tr', undefined, { 'data-host': h.name });
        const labels = Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(', ');
        tr.append(
          el('td', h.name),
          cell('address', hostAddress(h)),
          cell('labels', labels),
          cell('connected', h.connected ? 'yes' : 'no', h.lastError, 'note error'),
          cell('enforcement', enforcementText(h.enforcement), h.enforcement.warning, 'note warning'),
        );
        rows.append(tr);
      }
    })();
  },
};
