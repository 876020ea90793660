// One follower of the audit store for the whole daemon: it polls the store once per tick (one head
// lookup; when there is something new, one read of the new rows) and hands each new or completed action
// to every subscribed stream whose filter matches. Subscribers that resume from an older row (an
// EventSource reconnecting with Last-Event-ID) are caught up by the same ticks, a batch at a time, and
// then share the common cursor: however many streams are open, a quiet store costs one lookup a tick.
//
// Polling rather than a listener inside the store: it also sees what other processes append to the same
// file (a local `remux run` without the daemon).
import { matches, type AuditStore } from './store.js';
import type { AuditAction, AuditFilter } from './types.js';

export interface FollowerLimits {
  pollMs: number;
  /** Streams open at once per principal. */
  maxPerPrincipal: number;
  /** Streams open at once in the daemon, every principal together. */
  maxStreams: number;
}

export interface Subscription {
  /** Stops the stream's deliveries and frees its place. */
  close(): void;
}

interface Subscriber {
  principal: string;
  filter: AuditFilter;
  /** The last row this subscriber has been given the changes of. */
  cursor: number;
  onAction(action: AuditAction): void;
}

export class AuditFollower {
  private readonly subscribers = new Set<Subscriber>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readCount = 0;

  constructor(
    private readonly store: AuditStore,
    readonly limits: FollowerLimits,
  ) {}

  /** Reads of new rows so far (one per change however many streams follow, once they are caught up). */
  get reads(): number {
    return this.readCount;
  }

  /** Streams open now, for `principal` or in all. */
  open(principal?: string): number {
    let n = 0;
    for (const s of this.subscribers) if (principal === undefined || s.principal === principal) n++;
    return n;
  }

  /**
   * Delivers every action touched by a row after `fromSeq` that `filter` matches, from the next tick on,
   * until closed. Refused (with why) when the principal or the daemon has the most streams it may.
   */
  subscribe(principal: string, fromSeq: number, filter: AuditFilter, onAction: (action: AuditAction) => void): Subscription | { refusal: string } {
    if (this.closed) return { refusal: 'the daemon is stopping' };
    const mine = this.open(principal);
    if (mine >= this.limits.maxPerPrincipal) {
      return { refusal: `${principal} has ${mine} audit streams open, the most it may; close one (another tab?)` };
    }
    if (this.subscribers.size >= this.limits.maxStreams) {
      return { refusal: `the daemon has ${this.subscribers.size} audit streams open, the most it serves; try again later` };
    }
    const sub: Subscriber = { principal, filter, cursor: fromSeq, onAction };
    this.subscribers.add(sub);
    this.timer ??= setTimeout(() => this.tick(), this.limits.pollMs);
    return {
      close: () => {
        this.subscribers.delete(sub);
      },
    };
  }

  /** Stops polling; subscriptions receive nothing more. */
  close(): void {
    this.closed = true;
    this.subscribers.clear();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private tick(): void {
    this.timer = null;
    if (this.closed || this.subscribers.size === 0) return;
    try {
      const head = this.store.head().seq;
      // Subscribers at the same cursor share one read; after catching up they all sit at the head.
      const byCursor = new Map<number, Subscriber[]>();
      for (const s of this.subscribers) if (s.cursor < head) byCursor.set(s.cursor, [...(byCursor.get(s.cursor) ?? []), s]);
      for (const [cursor, group] of byCursor) {
        const { actions, upTo } = this.store.changesAfter(cursor);
        this.readCount++;
        for (const s of group) {
          s.cursor = upTo;
          for (const a of actions) {
            // A subscriber closed by an earlier delivery (its client fell behind) gets nothing more.
            if (this.subscribers.has(s) && matches(a, s.filter)) s.onAction(a);
          }
        }
      }
    } catch {
      // The store closed under us (the daemon is stopping) or a read failed: the next tick tries again.
    }
    if (!this.closed && this.subscribers.size > 0) this.timer = setTimeout(() => this.tick(), this.limits.pollMs);
  }
}
