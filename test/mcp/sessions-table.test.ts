// The daemon's table of MCP HTTP sessions: bound to their principal, bounded per principal (the least
// recently used goes) and in all (refused, so one principal cannot push the others out), idle ones ended.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { McpSessions } from '../../src/gateway/mcp/sessions.js';

function fakeTransport(closed: string[], id: string): Transport {
  return { start: async () => {}, send: async () => {}, close: async () => void closed.push(id) };
}

test('a session answers only its principal; the per-principal limit ends that principal\'s least recently used', async () => {
  const closed: string[] = [];
  const table = new McpSessions({ perPrincipal: 2, total: 10, idleMs: 60_000, firstUseMs: 60_000 });
  try {
    for (const id of ['a1', 'a2']) {
      assert.equal(table.admit('alice'), true);
      table.add(id, 'alice', fakeTransport(closed, id));
      await sleep(2);
    }
    assert.equal(table.use('a1', 'mallory'), null, 'another principal\'s session id is as good as unknown');
    assert.ok(table.use('a1', 'alice'), 'a1 is now the more recently used');
    assert.equal(table.admit('alice'), true);
    assert.deepEqual(closed, ['a2'], 'the least recently used of alice\'s sessions was ended');
    assert.equal(table.use('a2', 'alice'), null);
  } finally {
    await table.closeAll();
  }
});

test('the total limit refuses new sessions instead of ending other principals\' ones; idle sessions are ended', async () => {
  const closed: string[] = [];
  const table = new McpSessions({ perPrincipal: 5, total: 2, idleMs: 50, firstUseMs: 60_000 });
  try {
    table.add('a1', 'alice', fakeTransport(closed, 'a1'));
    table.add('b1', 'bob', fakeTransport(closed, 'b1'));
    assert.equal(table.admit('mallory'), false);
    assert.deepEqual(closed, []);
    await sleep(200);
    assert.deepEqual(closed.sort(), ['a1', 'b1'], 'both idle past 50 ms were ended by the sweep');
    assert.equal(table.size, 0);
    assert.equal(table.admit('mallory'), true);
  } finally {
    await table.closeAll();
  }
});

test('a session with no request after the one that opened it is ended at firstUseMs; one used by then is not', async () => {
  const closed: string[] = [];
  const table = new McpSessions({ perPrincipal: 5, total: 10, idleMs: 60_000, firstUseMs: 100 });
  try {
    table.add('used', 'alice', fakeTransport(closed, 'used'));
    table.add('unused', 'alice', fakeTransport(closed, 'unused'));
    assert.ok(table.use('used', 'alice'));
    for (let i = 0; i < 100 && closed.length === 0; i++) await sleep(50);
    await sleep(200);
    assert.deepEqual(closed, ['unused']);
    assert.ok(table.use('used', 'alice'), 'the used one goes on');
  } finally {
    await table.closeAll();
  }
});
