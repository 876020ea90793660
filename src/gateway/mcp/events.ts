// What a Streamable HTTP session sent as server-sent events, kept so that a client whose stream broke (a
// proxy's timeout, a network blip, a laptop asleep) resumes it: it reconnects with GET and Last-Event-ID,
// and hears what came after. One store per session, in memory, shared by our streams (json-post.ts) and
// the SDK transport's own (its GET stream), through the SDK's EventStore interface.
import type { EventId, EventStore, StreamId } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/**
 * A session keeps its latest 1000 events and 4 MiB of them (the oldest go first), enough for the calls
 * a client has in flight. Past 4 MiB the stream just written to keeps all of its events: its answer may
 * be larger on its own (a read_file's), and its client resumes from the event before it.
 */
export const EVENTS_KEPT = 1000;
export const EVENT_BYTES_KEPT = 4 << 20;
/**
 * And all sessions of the daemon together 64 MiB (up to 512 sessions could otherwise hold 2 GiB): past
 * that, a session storing an event lets go of its own oldest first, its current stream's kept as above.
 */
export const ALL_EVENT_BYTES_KEPT = 64 << 20;
let allBytes = 0;

/** How long a client waits before it reconnects a broken stream (SSE's `retry:`). */
export const RECONNECT_MS = 1000;

interface Stored {
  stream: StreamId;
  /** The message as JSON; '' for a priming event (an id and no message). */
  data: string;
  size: number;
}

export class SessionEvents implements EventStore {
  /** In the order stored: a Map iterates in insertion order, so its first entry is the oldest. */
  private readonly events = new Map<EventId, Stored>();
  private bytes = 0;
  private sequence = 0;

  /** Stores `data` (a message as JSON, or '' to prime a stream) and returns its event id. */
  add(stream: StreamId, data: string): EventId {
    const id = `${stream}_${++this.sequence}`;
    const size = Buffer.byteLength(data);
    this.events.set(id, { stream, data, size });
    this.bytes += size;
    allBytes += size;
    for (const [oldest, old] of this.events) {
      if (this.events.size <= EVENTS_KEPT && this.bytes <= EVENT_BYTES_KEPT && allBytes <= ALL_EVENT_BYTES_KEPT) break;
      if (old.stream === stream && this.events.size <= EVENTS_KEPT) continue;
      this.drop(oldest, old);
    }
    return id;
  }

  /** The session ended: nothing of it can be resumed, and its bytes count no more. */
  clear(): void {
    for (const [id, stored] of this.events) this.drop(id, stored);
  }

  private drop(id: EventId, stored: Stored): void {
    this.events.delete(id);
    this.bytes -= stored.size;
    allBytes -= stored.size;
  }

  /** The events of `id`'s stream stored after it; null when `id` is not (or no longer) here. */
  after(id: EventId): { stream: StreamId; events: Array<[EventId, string]> } | null {
    const from = this.events.get(id);
    if (!from) return null;
    const events: Array<[EventId, string]> = [];
    let past = false;
    for (const [eventId, { stream, data }] of this.events) {
      if (past && stream === from.stream && data !== '') events.push([eventId, data]);
      past ||= eventId === id;
    }
    return { stream: from.stream, events };
  }

  async storeEvent(stream: StreamId, message: JSONRPCMessage): Promise<EventId> {
    // The SDK primes its streams by storing an empty message.
    return this.add(stream, Object.keys(message).length === 0 ? '' : JSON.stringify(message));
  }

  async getStreamIdForEventId(id: EventId): Promise<StreamId | undefined> {
    return this.events.get(id)?.stream;
  }

  async replayEventsAfter(id: EventId, { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> }): Promise<StreamId> {
    const found = this.after(id);
    if (!found) throw new Error(`unknown event id ${id}`);
    for (const [eventId, data] of found.events) await send(eventId, JSON.parse(data) as JSONRPCMessage);
    return found.stream;
  }
}
