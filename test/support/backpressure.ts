// Shared by the daemon tests (local host) and the fleet tests (SSH hosts): a client that stops reading
// must stop the command, not make the daemon buffer its output, and lose nothing once it reads again.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { remux, spawnRemux } from './cli.js';

/** `remux client run HOST -- head -c SIZE /dev/zero` with a client that reads nothing for a while, then everything. */
export async function assertSlowClientHoldsCommand(env: Record<string, string>, host: string, size = 96 << 20): Promise<void> {
  const rss = async (): Promise<number> => (JSON.parse((await remux(['daemon', 'status', '--json'], { env })).stdout) as { memoryRssBytes: number }).memoryRssBytes;
  const before = await rss();
  const client = spawnRemux(['client', 'run', host, '--', `head -c ${size} /dev/zero`], { env });
  try {
    client.stdout!.pause();
    // Long enough for head to write all of it several times over if nothing held it back.
    await sleep(1500);
    const during = await rss();
    assert.ok(during - before < 32 << 20, `the daemon grew by ${((during - before) / 2 ** 20).toFixed(1)} MiB while its client did not read`);
    assert.equal(client.exitCode, null, 'the command is held, not finished');
    let received = 0;
    client.stdout!.on('data', (d: Buffer) => (received += d.length));
    const exited = new Promise<number | null>((resolve) => client.once('exit', resolve));
    const drained = new Promise((resolve) => client.stdout!.once('close', resolve));
    client.stdout!.resume();
    assert.equal(await exited, 0);
    await drained;
    assert.equal(received, size, 'every byte arrives once the client reads');
  } finally {
    client.kill('SIGKILL');
  }
}

/** An endless stdin that counts what was taken from it (what a command that never reads must not drain). */
export function endless(): { stream: Readable; taken: () => number } {
  let taken = 0;
  const block = Buffer.alloc(16 << 10, 0x61);
  const stream = new Readable({
    read() {
      taken += block.length;
      this.push(block);
    },
  });
  return { stream, taken: () => taken };
}
