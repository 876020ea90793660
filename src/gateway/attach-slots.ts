// Limits on what a principal holds at once, per principal and in total, counted by principal identity
// (a token shared by many browsers is one principal), across every front end of the daemon (CLI socket,
// browser, MCP): live attaches (issue 8), other WebSockets (pings), commands running. A refusal says
// which limit and what to do.

export const ATTACH_LIMITS = { perPrincipal: 5, total: 30 } as const;

export interface AttachSlot {
  /** Gives the slot back; idempotent. */
  release(): void;
}

/** How a refusal names what the slots hold. */
export interface SlotWords {
  /** What they are for: attaches, ping WebSockets, commands. */
  what: string;
  /** How one held is: open, running. */
  held: string;
  /** What the principal can do about its own limit. */
  remedy: string;
  /** When the daemon's limit may let one more in. */
  later: string;
  /** Where the limits are set (config.yaml), when they can be. */
  setting?: string;
}

const ATTACH_WORDS: SlotWords = { what: 'attaches', held: 'open', remedy: 'close one first', later: 'when one closes' };

/** AttachSlots.snapshot(): what `remux daemon status` shows of them. */
export interface SlotsStatus {
  held: number;
  limit: { perPrincipal: number; total: number };
  principals: Array<{ principal: string; held: number }>;
}

export class AttachSlots {
  private readonly byPrincipal = new Map<string, number>();
  private total = 0;
  private readonly words: SlotWords;

  /** `what`: the words a refusal uses (a plain string: what they are for, held open). */
  constructor(
    private readonly limits: { perPrincipal: number; total: number } = ATTACH_LIMITS,
    what: string | SlotWords = ATTACH_WORDS,
  ) {
    this.words = typeof what === 'string' ? { ...ATTACH_WORDS, what } : what;
  }

  /** A slot for `principal`, or why there is none. */
  acquire(principal: string): AttachSlot | { refusal: string } {
    const refusal = this.refusalFor(principal);
    if (refusal !== null) return { refusal };
    this.byPrincipal.set(principal, this.count(principal) + 1);
    this.total++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.byPrincipal.get(principal) ?? 1) - 1;
        if (left === 0) this.byPrincipal.delete(principal);
        else this.byPrincipal.set(principal, left);
      },
    };
  }

  /** Why `principal` would be refused a slot now, or null; takes none. */
  refusalFor(principal: string): string | null {
    const { what, held, remedy, later, setting } = this.words;
    const mine = this.count(principal);
    if (mine >= this.limits.perPrincipal) {
      const where = setting === undefined ? '' : `, ${setting}.per_principal in config.yaml,`;
      return `${principal} already has ${mine} ${what} ${held} (the limit per principal${where} is ${this.limits.perPrincipal}); ${remedy}`;
    }
    if (this.total >= this.limits.total) {
      const where = setting === undefined ? '' : `: ${setting}.total in config.yaml`;
      return `the daemon already serves ${this.total} ${what} (its limit${where}); try again ${later}`;
    }
    return null;
  }

  /** What is held now, in total and by each principal holding any (the most first), with the limits. */
  snapshot(): SlotsStatus {
    const principals = [...this.byPrincipal].map(([principal, held]) => ({ principal, held })).sort((a, b) => b.held - a.held || a.principal.localeCompare(b.principal));
    return { held: this.total, limit: { ...this.limits }, principals };
  }

  /** Live slots, in total and for one principal. */
  count(principal?: string): number {
    return principal === undefined ? this.total : (this.byPrincipal.get(principal) ?? 0);
  }
}
