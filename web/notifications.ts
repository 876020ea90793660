// Browser notifications while a console tab is open: a new approval waiting for an answer, and an agent
// session that comes to need a person (a permission prompt, waiting for input). Read from the same
// endpoints as the Approvals and Agents pages (approvals and agent states are not audit events, so the
// audit stream does not carry them). What was already there when the tab opened is not announced.
// Clicking one opens its page in this tab.
import { printable } from '../src/command/invisible.js';
import { api } from './api.js';

const POLL_MS = 4000;
const NEEDS_A_PERSON: Record<string, string> = { permission: 'permission prompt', waiting: 'waiting for input' };

interface Approval {
  id: string;
  principal: string;
  what: string;
}
interface AgentSession {
  id: string;
  name: string;
  state: string;
}

export function notificationsSupported(): boolean {
  return 'Notification' in window;
}

function show(title: string, body: string, tag: string, hash: string): void {
  if (Notification.permission !== 'granted') return;
  const n = new Notification(title, { body, tag });
  n.addEventListener('click', () => {
    window.focus();
    location.hash = hash;
    n.close();
  });
}

/** Starts watching; returns how to stop (on log out). */
export function watchForNotifications(): () => void {
  let approvals: Set<string> | null = null;
  let states: Map<string, string> | null = null;

  let agentsInScope = true;

  const poll = async (): Promise<void> => {
    const [a, s] = await Promise.all([api('/api/approvals'), agentsInScope ? api('/api/agents') : null]);
    if (a.ok) {
      const pending = ((await a.json()) as { approvals: Approval[] }).approvals;
      if (approvals !== null) {
        for (const x of pending) if (!approvals.has(x.id)) show('Approval needed', `${x.principal} wants to ${printable(x.what, true)}`, `approval-${x.id}`, `#/approvals?id=${encodeURIComponent(x.id)}`);
      }
      approvals = new Set(pending.map((x) => x.id));
    }
    // A principal out of the agents' scope gets 403: nothing to announce, now or later.
    if (s?.status === 403) agentsInScope = false;
    if (s?.ok) {
      const sessions = ((await s.json()) as { sessions: AgentSession[] }).sessions;
      if (states !== null) {
        for (const x of sessions) {
          const need = NEEDS_A_PERSON[x.state];
          if (need !== undefined && states.get(x.id) !== x.state) show(`${x.name}: ${need}`, `agent session ${x.id} needs you`, `agent-${x.id}`, `#/agents?id=${encodeURIComponent(x.id)}`);
        }
      }
      states = new Map(sessions.map((x) => [x.id, x.state]));
    }
  };
  void poll();
  const timer = window.setInterval(() => void poll(), POLL_MS);
  return () => window.clearInterval(timer);
}
