// Run on hosts: POST /api/run (perform(): the scope, policy, audit and exit status of `remux client run`)
// and show its NDJSON as it streams: each host's output live, then its result, then the overall exit.
// Cancel aborts the request; the daemon then stops the commands, as Ctrl-C does for the CLI.
import { api, el, errorText } from '../api.js';
import type { Page } from './page.js';

type Line =
  | { type: 'hosts'; hosts: string[] }
  | { type: 'output'; host: string; stream: 'stdout' | 'stderr'; data: string }
  | {
      type: 'result';
      host: string;
      outcome: string;
      exitCode: number;
      message: string | null;
      decision: { effect: string; reason: string; rule: string | null } | null;
      durationMs: number;
    }
  | { type: 'exit'; exitCode: number };

interface HostView {
  output: HTMLPreElement;
  result: HTMLElement;
  /** Characters shown so far. */
  shown: number;
}

/** Output shown per host: past it the page keeps reading (the command is not held) but shows no more. */
const MAX_SHOWN = 1 << 20;

/** Each complete line of an NDJSON body, as it arrives. */
async function* ndjson(body: ReadableStream<Uint8Array>): AsyncGenerator<Line> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) if (line !== '') yield JSON.parse(line) as Line;
  }
}

function field(form: HTMLFormElement, name: string, label: string, attrs: Record<string, string>): HTMLInputElement {
  const wrap = el('label', label);
  const input = el('input', undefined, { name, type: 'text', ...attrs });
  wrap.append(input);
  form.append(wrap);
  return input;
}

export const runPage: Page = {
  route: 'run',
  title: 'Run',
  render(container) {
    const form = el('form', undefined, { class: 'run' });
    const selector = field(form, 'selector', 'Hosts', { placeholder: 'web1, env=prod, all', required: '', value: 'localhost' });
    const command = field(form, 'command', 'Command', { placeholder: "uptime; grep -c error /var/log/app.log", required: '', class: 'wide', autocomplete: 'off', spellcheck: 'false' });
    const cwd = field(form, 'cwd', 'Directory', { placeholder: '(default)', pattern: '/.*' });
    const policy = field(form, 'policy', 'Policy', { placeholder: "(the principal's)" });
    const run = el('button', 'Run', { type: 'submit' });
    const cancel = el('button', 'Cancel (Ctrl-C)', { type: 'button', disabled: '' });
    form.append(run, cancel);
    const status = el('p', '', { class: 'status', role: 'status' });
    const error = el('p', '', { class: 'error', role: 'alert' });
    const hostsBox = el('div', undefined, { class: 'run-hosts' });
    container.append(el('h2', 'Run on hosts'), form, error, status, hostsBox);

    let running: AbortController | null = null;
    const finish = (): void => {
      running = null;
      run.disabled = false;
      cancel.disabled = true;
    };
    cancel.addEventListener('click', () => running?.abort());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (running) return;
      running = new AbortController();
      const signal = running.signal;
      run.disabled = true;
      cancel.disabled = false;
      error.textContent = '';
      status.textContent = 'Running…';
      hostsBox.replaceChildren();
      const views = new Map<string, HostView>();
      const body = { selector: selector.value.trim(), command: command.value, ...(cwd.value ? { cwd: cwd.value } : {}), ...(policy.value ? { policy: policy.value } : {}) };
      void (async () => {
        try {
          const res = await api('/api/run', { method: 'POST', body: JSON.stringify(body), signal });
          if (!res.ok || !res.body) {
            error.textContent = await errorText(res);
            status.textContent = '';
            return;
          }
          for await (const line of ndjson(res.body)) {
            if (line.type === 'hosts') {
              for (const host of line.hosts) {
                const box = el('section', undefined, { class: 'run-host', 'data-host': host });
                const result = el('p', 'running…', { class: 'result' });
                const output = el('pre', undefined, { class: 'output' });
                box.append(el('h3', host), output, result);
                hostsBox.append(box);
                views.set(host, { output, result, shown: 0 });
              }
            } else if (line.type === 'output') {
              const view = views.get(line.host);
              if (!view || view.shown >= MAX_SHOWN) continue;
              view.shown += line.data.length;
              view.output.append(line.stream === 'stderr' ? el('span', line.data, { class: 'stderr' }) : line.data);
              if (view.shown >= MAX_SHOWN) view.output.append(el('span', '\n[more output than the page shows; the command goes on]', { class: 'note' }));
            } else if (line.type === 'result') {
              const view = views.get(line.host);
              if (!view) continue;
              const why = line.decision?.effect === 'deny' ? `${line.decision.reason}${line.decision.rule ? ` (${line.decision.rule})` : ''}` : line.message;
              view.result.textContent = `exit ${line.exitCode} · ${line.outcome} · ${Math.round(line.durationMs)} ms${why ? ` · ${why}` : ''}`;
              view.result.className = `result ${line.exitCode === 0 ? 'ok' : 'failed'}`;
            } else {
              status.textContent = `Exit status ${line.exitCode}`;
            }
          }
        } catch (err) {
          status.textContent = signal.aborted ? 'Cancelled: the daemon stops the commands.' : '';
          if (!signal.aborted) error.textContent = (err as Error).message;
        } finally {
          finish();
        }
      })();
    });
    return () => running?.abort();
  },
};
