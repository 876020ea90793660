// The console's one way to the daemon: same-origin fetch with the session cookie, the CSRF token on
// every state change, JSON errors turned into their message.

export interface Me {
  name: string;
  csrfToken: string | null;
  /** What the principal may do (GET /api/me): pages offer only that. */
  scope: { admin: boolean; attach: 'interactive' | 'read-only' };
}

let csrfToken: string | null = null;
let current: Me | null = null;
let onLoggedOut: (why: string) => void = () => undefined;

export function setMe(me: Me | null): void {
  current = me;
  csrfToken = me?.csrfToken ?? null;
}

/**
 * What to do when the daemon no longer knows this browser's session (it expired, was ended elsewhere, or
 * a daemon that crashed could not hand it to the next one): the console asks for the token again.
 */
export function whenLoggedOut(handler: (why: string) => void): void {
  onLoggedOut = handler;
}

/** The session is gone: said once, by whoever noticed first. */
export function loggedOut(why: string): void {
  if (current !== null) onLoggedOut(why);
}

/** Whether the principal may act on sessions (create, type, kill), not only watch them. */
export function mayInteract(): boolean {
  return current !== null && (current.scope.admin || current.scope.attach !== 'read-only');
}

export async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.body !== undefined) headers.set('content-type', 'application/json');
  if (csrfToken && init.method && init.method !== 'GET') headers.set('x-csrf-token', csrfToken);
  const res = await fetch(path, { ...init, headers, credentials: 'same-origin' });
  if (res.status === 401 && path !== '/api/login') loggedOut('Your browser session ended; log in again.');
  return res;
}

export async function errorText(res: Response): Promise<string> {
  const body = (await res.json().catch(() => null)) as { message?: string } | null;
  return body?.message ?? `${res.status} ${res.statusText}`;
}

/**
 * Loads one page of a paged list (GET /api/recordings, /api/audit) and hands its items to `add`; while the
 * answer links to a next page (`Link: <…>; rel="next"`), `more` shows and loads it the same way.
 */
export async function loadPage<T>(path: string, more: HTMLButtonElement, error: HTMLElement, add: (items: T[]) => void): Promise<void> {
  more.disabled = true;
  const res = await api(path);
  more.disabled = false;
  if (!res.ok) return void (error.textContent = await errorText(res));
  const next = /<([^>]*)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
  more.hidden = next === undefined;
  more.onclick = () => void loadPage(next!, more, error, add);
  add((await res.json()) as T[]);
}

/** An element with text content (never HTML: nothing from the server is parsed as markup). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, attrs: Record<string, string> = {}): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

/**
 * A page's error line, said by its listing and by its actions: a listing that loads again clears only
 * its own failure, so a refused action stays said while the page refreshes (a refresh that lands just
 * after a refusal would wipe it).
 */
export function errorLine(): { node: HTMLParagraphElement; listing(problem: string | null): void; action(problem: string | null): void } {
  const node = el('p', '', { class: 'error', role: 'alert' });
  let fromListing = false;
  return {
    node,
    listing(problem) {
      if (problem === null && !fromListing) return;
      node.textContent = problem ?? '';
      fromListing = problem !== null;
    },
    action(problem) {
      node.textContent = problem ?? '';
      fromListing = false;
    },
  };
}
