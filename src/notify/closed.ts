// How a closed approval ended, in words for whoever reads it with nothing else to go by: the console's
// card, and the page a notification's decision link opens. Imported by the web console too: no Node APIs here.
import { answererWords } from '../audit/json.js';
import type { Approval } from './approvals.js';

export function howClosed(a: Pick<Approval, 'status' | 'principal' | 'options' | 'answer' | 'answeredBy' | 'answeredVia' | 'why'>): string {
  switch (a.status) {
    case 'pending':
      return 'waiting for an answer';
    case 'answered':
      return `answered "${a.options.find((o) => o.id === a.answer)?.label ?? a.answer}" by ${answererWords(a.answeredBy ?? '?', a.answeredVia)}`;
    case 'expired':
      // An agent session's question (agents/hooks.ts hookPrincipal) leaves its prompt on the agent's screen.
      return a.principal.startsWith('agent:') ? "expired: nobody answered in time; the agent's prompt was left to its terminal" : 'expired: nobody answered in time, which counts as a denial';
    case 'cancelled':
      return a.why === null ? 'withdrawn before anyone answered: whoever asked stopped waiting, or the prompt was answered at its terminal' : `withdrawn: ${a.why}`;
  }
}
