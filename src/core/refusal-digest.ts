// Refusals for "too much" (rate limited, too many running, too many attaches) are audited like every
// refusal, but a flood of them must not flood the audit store: a refused request costs its sender
// nothing, and a fan-out to 200 hosts refused writes a row per host. Per principal, the first few of a
// window are recorded one by one; the rest are counted, and one row at the window's end says how many
// there were, of what. Every refusal is still in the audit, the many as a count.

/** Security events that are not actions on a host (logins, counted refusals) are recorded against the daemon itself. */
export const DAEMON_HOST = '(daemon)';

export interface DigestedRefusals {
  principal: string;
  /** Refusals counted rather than recorded, by operation (exec, session.attach, …). */
  byOperation: ReadonlyMap<string, number>;
  total: number;
  /** When the window began and how long it was. */
  since: Date;
  windowMs: number;
  /** Recorded one by one in the window before the count began. */
  recorded: number;
}

export interface RefusalDigestOptions {
  /** Written at the end of a window in which refusals were counted. */
  write(summary: DigestedRefusals): Promise<unknown>;
  windowMs?: number;
  /** Recorded one by one per principal and window. */
  individually?: number;
}

interface Window {
  since: number;
  recorded: number;
  counted: Map<string, number>;
  timer: NodeJS.Timeout | null;
}

export const REFUSAL_DIGEST = { windowMs: 10_000, individually: 10 } as const;

export class RefusalDigest {
  private readonly windows = new Map<string, Window>();
  private readonly windowMs: number;
  private readonly individually: number;

  constructor(private readonly opts: RefusalDigestOptions) {
    this.windowMs = opts.windowMs ?? REFUSAL_DIGEST.windowMs;
    this.individually = opts.individually ?? REFUSAL_DIGEST.individually;
  }

  /** Whether this refusal of `principal` gets its own audit row (true), or was counted into the window's summary. */
  admit(principal: string, operation: string): boolean {
    const now = Date.now();
    let w = this.windows.get(principal);
    if (w === undefined || (w.timer === null && now - w.since >= this.windowMs)) {
      w = { since: now, recorded: 0, counted: new Map(), timer: null };
      this.windows.set(principal, w);
    }
    if (w.recorded < this.individually) {
      w.recorded++;
      return true;
    }
    w.counted.set(operation, (w.counted.get(operation) ?? 0) + 1);
    // The summary goes at the window's end: a flood that lasts gets one row per window.
    if (w.timer === null) {
      w.timer = setTimeout(() => void this.flush(principal), Math.max(0, w.since + this.windowMs - now));
      w.timer.unref();
    }
    return false;
  }

  /** Writes what is counted now (all principals without `principal`): at each window's end, and as the daemon stops. */
  async flush(principal?: string): Promise<void> {
    const names = principal === undefined ? [...this.windows.keys()] : [principal];
    await Promise.all(
      names.map(async (name) => {
        const w = this.windows.get(name);
        if (w === undefined) return;
        this.windows.delete(name);
        if (w.timer !== null) clearTimeout(w.timer);
        const total = [...w.counted.values()].reduce((a, b) => a + b, 0);
        if (total === 0) return;
        await this.opts.write({ principal: name, byOperation: w.counted, total, since: new Date(w.since), windowMs: this.windowMs, recorded: w.recorded });
      }),
    );
  }
}

/** The summary row's reason: how many, of what, in what window. */
export function digestWords(d: DigestedRefusals): string {
  const what = [...d.byOperation].map(([operation, n]) => `${operation} ${n}`).join(', ');
  return `${d.total} more refusals of ${d.principal} (rate limited, or too many running or open) in the ${d.windowMs / 1000} s from ${d.since.toISOString()}, counted rather than recorded one by one after the first ${d.recorded}: ${what}`;
}
