// A page of the console: shown under its hash route (#/name?params), given its container. It returns
// what to do when the user leaves it (close sockets, stop timers), if anything.
export interface Page {
  /** The route: #/<route>. */
  route: string;
  /** In the navigation bar; absent: reachable only by link (e.g. the terminal). */
  title?: string;
  render(container: HTMLElement, params: URLSearchParams): (() => void) | void;
}
