// A Streamable HTTP session's event store: bounded in events and bytes (the oldest go first, the stream
// just written to is kept whole past the byte bound), replaying a stream's events after an id, and
// serving the SDK transport through its EventStore interface.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { ALL_EVENT_BYTES_KEPT, EVENT_BYTES_KEPT, EVENTS_KEPT, SessionEvents } from '../../src/gateway/mcp/events.js';

const note = (n: number): string => JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: n } });

test('past its count the oldest event goes, and a resume from it is refused; what follows an id is its own stream\'s, in order', () => {
  const store = new SessionEvents();
  const a0 = store.add('a', '');
  const b1 = store.add('b', note(1));
  const a1 = store.add('a', note(1));
  const a2 = store.add('a', note(2));
  assert.deepEqual(store.after(a0), { stream: 'a', events: [[a1, note(1)], [a2, note(2)]] });
  assert.deepEqual(store.after(b1), { stream: 'b', events: [] });
  for (let i = 0; i < EVENTS_KEPT - 4; i++) store.add('c', note(i));
  assert.ok(store.after(a0), 'exactly at the bound, all are kept');
  store.add('c', 'x');
  assert.equal(store.after(a0), null, 'one more, and the oldest is dropped');
  assert.deepEqual(store.after(b1)?.stream, 'b', 'the next oldest is still there');
});

test('past its bytes the oldest events of other streams go; the stream just written to keeps its own, even an answer larger than the bound', () => {
  const store = new SessionEvents();
  const other = store.add('other', note(1));
  const primed = store.add('call', '');
  const large = 'x'.repeat(EVENT_BYTES_KEPT + 1);
  const answer = store.add('call', large);
  assert.equal(store.after(other), null, 'another stream\'s event made room');
  assert.deepEqual(store.after(primed), { stream: 'call', events: [[answer, large]] });
  store.add('next', note(2));
  assert.equal(store.after(primed), null, 'written to another stream, the large one is dropped in turn');
  assert.equal(store.after(answer), null);
});

test('the SDK transport stores, finds and replays through the EventStore interface; its empty priming message is not replayed', async () => {
  const store = new SessionEvents();
  const message: JSONRPCMessage = { jsonrpc: '2.0', method: 'notifications/tools/list_changed' };
  const primed = await store.storeEvent('_GET_stream', {} as JSONRPCMessage);
  const sent = await store.storeEvent('_GET_stream', message);
  assert.equal(await store.getStreamIdForEventId(sent), '_GET_stream');
  assert.equal(await store.getStreamIdForEventId('nope'), undefined);
  const replayed: Array<[string, JSONRPCMessage]> = [];
  assert.equal(await store.replayEventsAfter(primed, { send: async (id, m) => void replayed.push([id, m]) }), '_GET_stream');
  assert.deepEqual(replayed, [[sent, message]]);
  await assert.rejects(store.replayEventsAfter('nope', { send: async () => {} }), /unknown event id nope/);
});

test("all sessions together keep at most 64 MiB: past it, the session storing an event lets go of its own oldest; an ended session's count no more", () => {
  const big = 'x'.repeat(ALL_EVENT_BYTES_KEPT / 16 - 1024);
  const sessions = Array.from({ length: 16 }, () => new SessionEvents());
  const held = sessions.map((s) => s.add('done', big));
  const [first, ...rest] = sessions;
  first!.add('now', 'y'.repeat(1 << 20));
  assert.equal(first!.after(held[0]!), null, 'its own oldest went');
  assert.ok(rest.every((s, i) => s.after(held[i + 1]!) !== null), "the others' are theirs");
  for (const s of rest) s.clear();
  const kept = first!.add('later', 'z'.repeat(1 << 20));
  first!.add('again', 'w'.repeat(1 << 20));
  assert.ok(first!.after(kept), 'the ended sessions made room');
  first!.clear();
});
