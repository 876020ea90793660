// Hosts this principal may use: transport, labels, connection, enforcement.
import { api, el, errorText } from '../api.js';
import type { Page } from './page.js';

interface HostRow {
  name: string;
  transport: string;
  labels: Record<string, string>;
  connected: boolean;
  enforcement: { mode: string; detail: string };
}

export const hostsPage: Page = {
  route: 'hosts',
  title: 'Hosts',
  render(container) {
    const error = el('p', '', { class: 'error', role: 'alert' });
    const rows = el('tbody');
    const table = el('table', undefined, { class: 'hosts' });
    const head = el('tr');
    for (const h of ['Name', 'Transport', 'Labels', 'Connected', 'Enforcement']) head.append(el('th', h));
    table.append(el('thead'), rows);
    table.tHead!.append(head);
    container.append(el('h2', 'Hosts'), error, table);
    void (async () => {
      const res = await api('/api/hosts');
      if (!res.ok) return void (error.textContent = await errorText(res));
      for (const h of (await res.json()) as HostRow[]) {
        const tr = el('tr');
        const labels = Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(', ');
        for (const text of [h.name, h.transport, labels, h.connected ? 'yes' : 'no', `${h.enforcement.mode} (${h.enforcement.detail})`]) tr.append(el('td', text));
        rows.append(tr);
      }
    })();
  },
};
