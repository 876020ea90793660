// Polls `check` until it gives a truthy value (returned), or fails naming `what` after `ms` (a function:
// said as it is at the failure, e.g. what a terminal showed by then).
export async function until<T>(what: string | (() => string), check: () => T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
