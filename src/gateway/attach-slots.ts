// Limits on live attaches (issue 8), and on other WebSockets a principal holds open (pings): per
// principal and in total, counted by principal identity (a token shared by many browsers is one
// principal), across every front end of the daemon (CLI socket and browser). A refusal says which
// limit and what to do.

export const ATTACH_LIMITS = { perPrincipal: 5, total: 30 } as const;

export interface AttachSlot {
  /** Gives the slot back; idempotent. */
  release(): void;
}

export class AttachSlots {
  private readonly byPrincipal = new Map<string, number>();
  private total = 0;

  /** `what`: what the slots are for, as a refusal names them (attaches, ping WebSockets). */
  constructor(
    private readonly limits: { perPrincipal: number; total: number } = ATTACH_LIMITS,
    private readonly what = 'attaches',
  ) {}

  /** A slot for `principal`, or why there is none. */
  acquire(principal: string): AttachSlot | { refusal: string } {
    const mine = this.byPrincipal.get(principal) ?? 0;
    if (mine >= this.limits.perPrincipal) {
      return { refusal: `${principal} already has ${mine} ${this.what} open (the limit per principal is ${this.limits.perPrincipal}); close one first` };
    }
    if (this.total >= this.limits.total) {
      return { refusal: `the daemon already serves ${this.total} ${this.what} (its limit); try again when one closes` };
    }
    this.byPrincipal.set(principal, mine + 1);
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

  /** Live attaches, in total and for one principal. */
  count(principal?: string): number {
    return principal === undefined ? this.total : (this.byPrincipal.get(principal) ?? 0);
  }
}
