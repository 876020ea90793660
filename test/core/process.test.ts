// processAlive: what `remux daemon stop` waits on, and stale-lock and console-URL checks ask.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { processAlive } from '../../src/core/process.js';
import { until } from '../support/until.js';

test('a running process is alive; a zombie, which kill(pid, 0) still finds, and a reaped one are not', async () => {
  assert.equal(processAlive(process.pid), true);
  // The child ends once its parent has been exec'd into sleep, which never collects it: a zombie while
  // sleep runs (one that ended at once could be reaped by sh before the exec, as seen in CI).
  const parent = spawn('sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const zombie = Number(String((await once(parent.stdout!, 'data'))[0]).trim());
    await until('the zombie', () => /\) Z/.test(readFileSync(`/proc/${zombie}/stat`, 'utf8')));
    process.kill(zombie, 0); // does not throw: why the state is read
    assert.equal(processAlive(zombie), false);
    assert.equal(processAlive(parent.pid!), true);
    parent.kill('SIGKILL');
    await once(parent, 'exit');
    assert.equal(processAlive(parent.pid!), false);
  } finally {
    parent.kill('SIGKILL');
  }
});
