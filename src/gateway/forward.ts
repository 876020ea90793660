// Forwards a whole `remux client …` command line to a running daemon and plays the answer back: output
// frames to our stdout and stderr, questions to our terminal, Ctrl-C and our stdin (as the daemon asks for it) to the daemon. The native launcher
// (native/launcher.c) does the same without starting Node; this is the path for `node bin/remux.js`.
import type { Invocation } from '../cli/invocation.js';
import { packageVersion } from '../cli/program.js';
import { CreditedSender } from '../exec/input-credit.js';
import { connectDaemon } from './client.js';
import { FRAME, frame, FrameReader, type CliRequest } from './protocol.js';

/** Largest frame a daemon sends: output arrives in chunks far smaller than this. */
const MAX_FRAME_BYTES = 64 << 20;

/** The environment variables that decide which files a command line means; nothing else leaves the client. */
const FORWARDED_ENV = /^(REMUX_|RPIPE_)|^(HOME|XDG_CONFIG_HOME)$/;

export function cliRequest(inv: Invocation): CliRequest {
  return {
    type: 'cli',
    version: packageVersion(),
    args: inv.args,
    cwd: inv.cwd,
    env: Object.fromEntries(Object.entries(inv.env).filter((e): e is [string, string] => FORWARDED_ENV.test(e[0]) && e[1] !== undefined)),
    stdinIsTTY: inv.stdinIsTTY,
    stderrIsTTY: inv.stderrIsTTY,
    ...(inv.stdin !== null ? { stdin: true } : {}),
    ...(inv.columns !== undefined ? { columns: inv.columns } : {}),
  };
}

export type ForwardOutcome = { exitCode: number } | { declined: string };

/** The client's side of `request` on the daemon at `socketPath`; null when no daemon runs there. */
export async function forwardToDaemon(socketPath: string, request: CliRequest, inv: Invocation): Promise<ForwardOutcome | null> {
  const socket = await connectDaemon(socketPath);
  if (!socket) return null;
  return new Promise((resolve) => {
    let outcome: ForwardOutcome | null = null;
    const questionsEnd = new AbortController();
    // Read only as the daemon grants credit: a command that never reads its stdin takes none of ours.
    const input =
      request.stdin === true && inv.stdin !== null
        ? new CreditedSender(inv.stdin, { data: (chunk) => socket.write(frame(FRAME.stdin, chunk)), end: () => socket.write(frame(FRAME.stdinEnd)) })
        : null;
    const reader = new FrameReader((type, payload) => {
      switch (type) {
        case FRAME.stdout:
          return inv.stdout.write(payload);
        case FRAME.stderr:
          return inv.stderr.write(payload);
        case FRAME.question: {
          // The payload is a 4-byte question id and the prompt; the answer carries the id back.
          const id = payload.subarray(0, 4);
          void inv.question(payload.subarray(4).toString('utf8'), questionsEnd.signal).then((answer) =>
            socket.write(frame(FRAME.answer, Buffer.concat([id, Buffer.from(answer, 'utf8')]))),
          );
          return;
        }
        case FRAME.stdinCredit:
          return input?.grant(payload.readUInt32BE(0));
        case FRAME.exit:
          outcome = { exitCode: payload.readInt32BE(0) };
          return;
        case FRAME.decline:
          outcome = { declined: payload.toString('utf8') };
          return;
        default:
          throw new Error(`unknown frame type ${type} from the daemon`);
      }
    }, MAX_FRAME_BYTES);
    const release = inv.onInterrupt(() => socket.write(frame(FRAME.interrupt)));
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        inv.stderr.write(`remux: ${(err as Error).message}\n`);
        socket.destroy();
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      input?.stop();
      release();
      questionsEnd.abort();
      if (!outcome) inv.stderr.write('remux: the daemon closed the connection before the command finished\n');
      resolve(outcome ?? { exitCode: 255 });
    });
    socket.write(`${JSON.stringify(request)}\n`);
  });
}
