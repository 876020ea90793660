// sessions.recordings_max_total_mb holds while recordings are written, not only when retention next runs
// (every 10 minutes, and never on a recording changed within an attach's lifetime): against a real daemon
// and real tmux, a browser attach to a flooding session records only the room the other recordings leave.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { newRecordingId } from '../../src/sessions/recording.js';
import { openTerminal, startConsoleDaemon, type ConsoleDaemon } from '../support/console-daemon.js';

describe('recordings stay within sessions.recordings_max_total_mb as they are written', { timeout: 60_000 }, () => {
  let d: ConsoleDaemon;

  before(async () => {
    d = await startConsoleDaemon({ boss: ['--admin'] }, 'sessions:\n  recordings_max_total_mb: 1\n');
  });
  after(() => d.stop());

  test('an attach to a flood stops recording at the room the others leave, with a marker; the attach goes on', async () => {
    // Another attach's recording, just written: retention must keep it (it may still be written).
    const dir = join(d.home, 'recordings');
    mkdirSync(dir, { recursive: true });
    const room = (1 << 20) - (900 << 10);
    writeFileSync(join(dir, `${newRecordingId()}.cast`), 'x'.repeat(900 << 10), { mode: 0o600 });
    d.tmux('new-session', '-d', '-s', 'flood', 'yes flooding-the-recording');
    const t = await openTerminal(d, { host: 'box', name: 'flood' }, { authorization: `Bearer ${d.tokens.boss}` });
    assert.equal(t.control[0]?.type, 'ready', JSON.stringify(t.control));
    // A browser that renders everything at once: the daemon goes on reading the flood (up to 10 s: a
    // loaded machine, four test files at once, delivered 247 KB in the first 2 s).
    let received = 0;
    for (let i = 0; i < 200 && received <= 2 * room; i++) {
      await sleep(50);
      t.ackAll();
      received = t.text().length;
    }
    assert.ok(received > 2 * room, `the attach went on past the recording: ${received} bytes received`);
    t.ws.close();
    await t.closed;
    const cast = join(dir, `${String(t.control[0]?.recording)}.cast`);
    let text = '';
    for (let i = 0; i < 100 && !(text = readFileSync(cast, 'utf8')).includes('recording stopped'); i++) await sleep(20);
    assert.ok(statSync(cast).size <= room + 200, `the recording took ${statSync(cast).size} bytes, the room was ${room}`);
    assert.match(text.trim().split('\n').at(-1) ?? '', /"m","recording stopped: size limit reached"/);
    assert.match(text, /flooding-the-recording/, 'what fits is recorded');
  });
});
