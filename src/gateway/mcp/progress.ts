// How a long tool call tells its client it is still going: MCP progress notifications, sent only when the
// client asked for them (a progressToken). A client resets its request timeout on each (the SDK's
// default timeout is 60 s, which a build or a test suite outlasts), and shows the message to its user.

/** Told after 1, 2 and 4 s, then every PROGRESS_EVERY_MS: a quick first sign, then no flood. */
export const PROGRESS_AT_MS: readonly number[] = [1000, 2000, 4000];
export const PROGRESS_EVERY_MS = 5000;

/** Bytes of the latest output kept for the "last line" of a progress message. */
const TAIL_BYTES = 512;
const LINE_CHARS = 120;

export interface Ticker {
  /** While an approval is awaited (which tells its own waiting state): no running messages. */
  pause(): void;
  /** Running (again): the schedule and the time counted start over. */
  resume(): void;
  stop(): void;
}

/** Calls `tell(describe(ms since started))` on the schedule above until stopped; paused, it waits for resume(). */
export function ticker(tell: (text: string) => void, describe: (elapsedMs: number) => string): Ticker {
  let timer: NodeJS.Timeout | null = null;
  let started = 0;
  let step = 0;
  const schedule = (): void => {
    const at = step < PROGRESS_AT_MS.length ? PROGRESS_AT_MS[step]! : PROGRESS_AT_MS.at(-1)! + (step - PROGRESS_AT_MS.length + 1) * PROGRESS_EVERY_MS;
    timer = setTimeout(() => {
      step++;
      tell(describe(performance.now() - started));
      schedule();
    }, Math.max(0, started + at - performance.now()));
    // A call's progress never keeps a process alive.
    timer.unref();
  };
  const halt = (): void => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  const t: Ticker = {
    pause: halt,
    resume() {
      halt();
      started = performance.now();
      step = 0;
      schedule();
    },
    stop: halt,
  };
  t.resume();
  return t;
}

/** The latest output of a command (both streams), for progress messages. */
export class OutputTail {
  private tail: Buffer = Buffer.alloc(0);
  bytes = 0;

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.tail = chunk.length >= TAIL_BYTES ? chunk.subarray(chunk.length - TAIL_BYTES) : Buffer.concat([this.tail, chunk]).subarray(-TAIL_BYTES);
  }

  /** Its last line with something on it, without terminal escapes or control characters, cut to a readable length. */
  lastLine(): string | null {
    const lines = this.tail
      .toString('utf8')
      .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]/g, '')
      .split(/\r\n|\r|\n/)
      .map((l) => l.replace(/[\x00-\x1f\x7f]/g, ' ').trim())
      .filter((l) => l !== '');
    const last = lines.at(-1);
    if (last === undefined) return null;
    return last.length > LINE_CHARS ? `${last.slice(0, LINE_CHARS - 1)}…` : last;
  }
}

/** "running for 12 s on web1: 3.4 KiB of output, last line: ok 12 - parses" */
export function runningText(host: string, elapsedMs: number, tail: OutputTail): string {
  const seconds = Math.round(elapsedMs / 1000);
  if (tail.bytes === 0) return `running for ${seconds} s on ${host}: no output yet`;
  const size = tail.bytes < 1024 ? `${tail.bytes} bytes` : `${(tail.bytes / 1024).toFixed(1)} KiB`;
  const line = tail.lastLine();
  return `running for ${seconds} s on ${host}: ${size} of output${line === null ? '' : `, last line: ${line}`}`;
}
