// An outbound agent's machine as a Host: every operation is a request over the agent's relay connection
// (gateway/relay/hub.ts). The gateway's perform() has already checked its own policy, with paths and
// programs resolved on the agent (resolverFor); the agent checks its own policy again before running.
// Output goes through the same OutputGate (cap, redaction) as on the other transports, and the caller's
// backpressure reaches the agent as credit: without credit the agent stops reading the command. The
// caller's stdin goes the other way under the agent's credit (exec/input-credit.ts).
import { renderCommandList } from '../command/render.js';
import { isInside } from '../exec/sandbox.js';
import { OutputGate, type OutputSource } from '../exec/output.js';
import type { ExecResult, OutputFlow } from '../exec/types.js';
import type { AgentConnection, AgentHub, PendingRequest } from '../gateway/relay/hub.js';
import { CreditedSender } from '../exec/input-credit.js';
import { CHUNK_BYTES, FILE_CHUNK_BYTES, PROTOCOL_V2, PROTOCOL_V3, PROTOCOL_V4, PROTOCOL_V5, WINDOW_BYTES, type FileDone } from '../gateway/relay/protocol.js';
import type { PathResolver } from '../policy/types.js';
import { prefetchResolver, WhichCache } from './remote-resolver.js';
import { FileError, TransportError, type Host, type HostExecRequest, type HostFiles, type HostTerminal, type TerminalSize } from './types.js';

/** After a command's own timeout, how long the agent has to report it before the gateway gives up. */
const RESULT_GRACE_MS = 10_000;

/** An agent host asked of a process agents never connect to (a CLI without a daemon). */
export function notRelayedHere(name: string): TransportError {
  return new TransportError(
    `agent host ${name} is reached only through the daemon its agent connects to (its web server's relay), and none serves this command: start it (remux daemon start), then run this again without --no-daemon`,
  );
}

export function agentNotConnected(name: string, lastError: string | null): string {
  return `agent ${name} is not connected (${lastError ?? 'never connected'}); start it with: remux agent --gateway URL --name ${name} --token-file FILE`;
}

export function createAgentHost(name: string, hub: AgentHub): Host {
  const whichCaches = new WeakMap<AgentConnection, WhichCache>();
  const connection = (): AgentConnection => {
    const c = hub.get(name);
    if (!hub.relaying) throw notRelayedHere(name);
    if (!c?.open) throw new TransportError(agentNotConnected(name, hub.status(name).lastError));
    return c;
  };
  return {
    name,
    resolver: resolvedOnTheAgent(name),
    resolverFor(policy, list, cwd) {
      const conn = connection();
      let cache = whichCaches.get(conn);
      if (!cache) whichCaches.set(conn, (cache = new WhichCache()));
      return prefetchResolver(policy, list, cwd, {
        securePath: conn.hello.securePath,
        whichCache: cache,
        answer: (paths, names) =>
          control(conn, { type: 'resolve', paths, names }, (f) => (f.type === 'resolved' ? { paths: f.paths, names: f.names } : undefined)),
      });
    },
    defaultCwd(_callerCwd, sandbox) {
      const home = hub.get(name)?.hello.home ?? '/';
      if (sandbox === null) return home;
      return [...sandbox.read, ...sandbox.write].some((root) => isInside(home, root)) ? home : '/';
    },
    // async: an agent gone since the policy check is a rejection (perform audits it as unreachable), not a throw past it.
    execute: async (req) => execute(connection(), req),
    startsOnceDurable: true,
    openTerminal: async (argv, size) => openTerminal(connection(), argv, size),
    sandboxSupport: async () => connection().hello.sandbox,
    files: agentFiles(connection),
  };
}

/**
 * Files on the agent's machine. A file operation's frame holds at most FILE_CHUNK_BYTES: a longer read is
 * several reads in a row (a file changed meanwhile may read as parts of both versions); a write carries
 * at most that much. The agent checks its own policy on each read, write and listing.
 */
function agentFiles(connection: () => AgentConnection): HostFiles {
  const ask = (frame: Parameters<AgentConnection['request']>[0], sent?: (id: number) => void): Promise<FileDone> => {
    const conn = connection();
    return control(conn, frame, (f) => (f.type === 'file-done' ? f : f.type === 'file-error' ? new FileError(f.message, { denied: f.denied === true }) : undefined), sent).then((r) => {
      if (r instanceof FileError) throw r;
      return r;
    });
  };
  return {
    async resolve(paths) {
      return (await ask({ type: 'file-resolve', paths: [...paths] })).resolved ?? [];
    },
    async read(path, { offset, length }) {
      const parts: Buffer[] = [];
      let size = 0;
      for (let at = offset, left = length; left > 0; ) {
        const asked = Math.min(left, FILE_CHUNK_BYTES);
        const r = await ask({ type: 'file-read', path, offset: at, length: asked });
        const part = Buffer.from(r.content ?? '', 'base64');
        // More than asked would pass the caller's cap (MCP read_file's length, client read --head).
        if (part.length > asked) throw new FileError(`agent ${connection().name} answered a read of at most ${asked} bytes of ${path} with ${part.length}: it does not speak the relay protocol as remux does`);
        size = r.size ?? 0;
        parts.push(part);
        if (part.length < asked) break; // the end of the file
        at += part.length;
        left -= part.length;
      }
      return { content: Buffer.concat(parts), size };
    },
    async write(path, content, { createDirs }) {
      // The first frame says how many parts of the rest follow it; the agent writes once all are in.
      const parts: Buffer[] = [];
      for (let at = FILE_CHUNK_BYTES; at < content.length; at += FILE_CHUNK_BYTES) parts.push(content.subarray(at, at + FILE_CHUNK_BYTES));
      const conn = connection();
      if (parts.length > 0 && conn.hello.v < PROTOCOL_V2) {
        throw new FileError(`agent ${conn.name} runs an older remux (relay protocol ${conn.hello.v}) that takes at most ${FILE_CHUNK_BYTES} bytes in a write; upgrade remux there`);
      }
      const first = { type: 'file-write', path, content: content.subarray(0, FILE_CHUNK_BYTES).toString('base64'), createDirs, ...(parts.length > 0 ? { more: parts.length } : {}) } as const;
      const sendParts = (id: number): void => {
        for (const part of parts) conn.send({ type: 'file-write-part', id, content: part.toString('base64') });
      };
      return { created: (await ask(first, sendParts)).created ?? false };
    },
    async list(path, maxEntries) {
      const r = await ask({ type: 'file-list', path });
      const entries = r.entries ?? [];
      return { entries: entries.slice(0, maxEntries), truncated: (r.truncated ?? false) || entries.length > maxEntries };
    },
  };
}

/** A request answered by one frame (or an error), within the relay's request timeout. */
function control<T>(
  conn: AgentConnection,
  frame: Parameters<AgentConnection['request']>[0],
  pick: (f: Parameters<PendingRequest['onFrame']>[0]) => T | undefined,
  /** Called with the request's id right after its frame went out (a write's parts follow it). */
  sent?: (id: number) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      conn.forget(id);
      conn.send({ type: 'cancel', id });
      reject(new TransportError(`agent ${conn.name} did not answer a ${frame.type} request within ${conn.options.requestTimeoutMs} ms`));
    }, conn.options.requestTimeoutMs);
    const id = conn.request(frame, {
      onFrame(f) {
        clearTimeout(timer);
        if (f.type === 'error') reject(new TransportError(`agent ${conn.name}: ${f.message}`));
        else {
          const value = pick(f);
          if (value === undefined) reject(new TransportError(`agent ${conn.name} answered a ${frame.type} request with a ${f.type} frame`));
          else resolve(value);
        }
        return true;
      },
      fail(err) {
        clearTimeout(timer);
        reject(err);
      },
    });
    sent?.(id);
  });
}

/** Grants the agent credit for output once the caller has room for it (batched: a frame per quarter window). */
class Credit {
  private owed = 0;
  private waiting = false;

  constructor(
    private readonly grant: (bytes: number) => void,
    private readonly flow: OutputFlow | undefined,
    private readonly paused: () => boolean = () => false,
  ) {}

  took(bytes: number): void {
    this.owed += bytes;
    this.settle();
  }

  settle(): void {
    if (this.waiting || this.owed < WINDOW_BYTES / 4 || this.paused()) return;
    if (this.flow?.full()) {
      this.waiting = true;
      this.flow.onRoom(() => {
        this.waiting = false;
        this.settle();
      });
      return;
    }
    const bytes = this.owed;
    this.owed = 0;
    this.grant(bytes);
  }
}

async function execute(conn: AgentConnection, req: HostExecRequest): Promise<ExecResult> {
  const started = performance.now();
  // The command goes out before the action's begin is durable only to an agent that holds it until told.
  const held = req.durable !== undefined && conn.hello.v >= PROTOCOL_V4;
  if (req.durable !== undefined && !held) await req.durable;
  if (req.signal?.aborted) return notRun(130, 'interrupted before it started', started, { aborted: true });
  const stdin = req.stdin ?? null;
  if (stdin !== null && conn.hello.v < PROTOCOL_V2) {
    // Refused rather than silently dropped: the command would read nothing.
    return notRun(125, `agent ${conn.name} runs an older remux (relay protocol ${conn.hello.v}) that cannot take standard input; upgrade remux there`, started, { errorKind: 'invalid' });
  }
  if (req.policy === undefined && req.sandbox !== null && conn.hello.v < PROTOCOL_V2) {
    // Protocol 1 ignored a sandbox sent with remux's own commands: the session would start unsandboxed.
    return notRun(125, `agent ${conn.name} runs an older remux (relay protocol ${conn.hello.v}) that cannot sandbox a session; upgrade remux there`, started, { errorKind: 'sandbox_unavailable' });
  }
  // The stages this policy lets out of its sandbox, for the agent to let out where its own does too. An
  // agent of protocol 4 or older is not told (it refuses a field it does not know): it runs them inside.
  const outside = req.sandbox !== null && conn.hello.v >= PROTOCOL_V5 ? (req.outside ?? []) : [];
  return new Promise<ExecResult>((resolve, reject) => {
    let truncated = false;
    let id = 0;
    let ended = false;
    const cancel = (): void => conn.send({ type: 'cancel', id });
    const gate = new OutputGate(req.output, { stdout: req.onStdout, stderr: req.onStderr }, () => {
      truncated = true;
      cancel();
    });
    const sources: Record<'stdout' | 'stderr', OutputSource> = { stdout: gate.source('stdout'), stderr: gate.source('stderr') };
    const credit = new Credit((bytes) => conn.send({ type: 'credit', id, bytes }), req.flow);
    let deadline: NodeJS.Timeout | null = null;
    let input: CreditedSender | null = null;
    const onAbort = (): void => {
      input?.stop();
      cancel();
    };
    const finish = (): void => {
      ended = true;
      if (deadline) clearTimeout(deadline);
      input?.stop();
      req.signal?.removeEventListener('abort', onAbort);
    };
    id = conn.request(
      {
        type: 'exec',
        command: renderCommandList(req.list),
        cwd: req.cwd,
        timeoutMs: req.timeoutMs,
        pipefail: req.pipefail,
        sandbox: req.sandbox,
        policy: req.policy ?? null,
        own: req.policy === undefined,
        // Only when there is input: an agent of protocol 1 refuses a frame with a field it does not know.
        ...(stdin !== null ? { stdin: true } : {}),
        ...(held ? { hold: true } : {}),
        ...(outside.length > 0 ? { outside: [...outside] } : {}),
      },
      {
        onFrame(f) {
          if (f.type === 'stdin-credit') {
            input?.grant(f.bytes);
            return false;
          }
          if (f.type === 'out' && f.stream !== 'pty') {
            const data = Buffer.from(f.data, 'base64');
            sources[f.stream].write(data);
            credit.took(data.length);
            return false;
          }
          finish();
          sources.stdout.end();
          sources.stderr.end();
          if (f.type === 'result') {
            const r = f.result;
            resolve({ ...r, signal: r.signal as NodeJS.Signals | null, aborted: r.aborted && !truncated, truncated: truncated || r.truncated, bytesOut: gate.bytesOut, bytesErr: gate.bytesErr, durationMs: performance.now() - started });
          } else reject(new TransportError(f.type === 'error' ? `agent ${conn.name}: ${f.message}` : `agent ${conn.name} answered a command with a ${f.type} frame`));
          return true;
        },
        fail(err) {
          finish();
          reject(err);
        },
      },
    );
    // Read only as the agent grants credit: as fast as the command there reads, no faster.
    if (stdin !== null) {
      input = new CreditedSender(stdin, {
        data: (chunk) => conn.send({ type: 'stdin', id, data: chunk.toString('base64') }),
        end: () => conn.send({ type: 'stdin-end', id }),
      });
    }
    // Its begin on disk, the agent may start it; a begin that failed withdraws it (the agent answers: not run).
    if (held) {
      req.durable!.then(
        () => {
          if (!ended) conn.send({ type: 'go', id });
        },
        () => {
          if (!ended) cancel();
        },
      );
    }
    req.signal?.addEventListener('abort', onAbort, { once: true });
    // Set once the request is out (request() throws when the agent is gone): the agent enforces the
    // command's own timeout; this catches an agent that never reports.
    if (req.timeoutMs !== null) {
      deadline = setTimeout(() => {
        finish();
        conn.forget(id);
        cancel();
        reject(new TransportError(`agent ${conn.name} did not report the command within ${req.timeoutMs! + RESULT_GRACE_MS} ms; it was cancelled there`));
      }, req.timeoutMs + RESULT_GRACE_MS);
    }
  });
}

async function openTerminal(conn: AgentConnection, argv: readonly string[], size: TerminalSize): Promise<HostTerminal> {
  let paused = false;
  let id = 0;
  const listeners: Array<(chunk: Buffer) => void> = [];
  const early: Buffer[] = [];
  let settleExit!: (exit: { code: number | null; signal: string | null }) => void;
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => (settleExit = resolve));
  const credit = new Credit((bytes) => conn.send({ type: 'credit', id, bytes }), undefined, () => paused);
  // Input sent, and what the agent's pty took of it (an agent of protocol 3 says; an older one does not).
  const reportsTaken = conn.hello.v >= PROTOCOL_V3;
  let inputSent = 0;
  let inputTaken = 0;
  await new Promise<void>((resolve, reject) => {
    let opened = false;
    const timer = setTimeout(() => {
      conn.forget(id);
      conn.send({ type: 'cancel', id });
      reject(new TransportError(`agent ${conn.name} did not open a terminal within ${conn.options.requestTimeoutMs} ms`));
    }, conn.options.requestTimeoutMs);
    id = conn.request(
      { type: 'terminal', argv: [...argv], cols: size.cols, rows: size.rows, ...(reportsTaken ? { inputTaken: true } : {}) },
      {
        onFrame(f) {
          if (f.type === 'opened' && !opened) {
            opened = true;
            clearTimeout(timer);
            resolve();
            return false;
          }
          if (f.type === 'out' && f.stream === 'pty' && opened) {
            const data = Buffer.from(f.data, 'base64');
            if (listeners.length === 0) early.push(data);
            for (const l of listeners) l(data);
            credit.took(data.length);
            return false;
          }
          if (f.type === 'input-taken' && opened) {
            inputTaken = Math.min(inputSent, inputTaken + f.bytes);
            return false;
          }
          clearTimeout(timer);
          if (f.type === 'exit') settleExit({ code: f.code, signal: f.signal });
          else settleExit({ code: null, signal: null });
          if (!opened) reject(new TransportError(f.type === 'error' ? `agent ${conn.name}: ${f.message}` : `agent ${conn.name} ended the terminal before it opened`));
          return true;
        },
        fail(err) {
          clearTimeout(timer);
          settleExit({ code: null, signal: null });
          if (!opened) reject(err);
        },
      },
    );
  });
  return {
    write(data) {
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      inputSent += buf.length;
      for (let at = 0; at < buf.length; at += CHUNK_BYTES) conn.send({ type: 'input', id, data: buf.subarray(at, at + CHUNK_BYTES).toString('base64') });
    },
    resize: (cols, rows) => conn.send({ type: 'resize', id, cols, rows }),
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
      credit.settle();
    },
    pausesAtOnce: false,
    // Input goes out on the agent's connection at once; what the pty there has not taken waits on the agent,
    // which says what it took (in steps: up to INPUT_TAKEN_STEP_BYTES more show as waiting). An older agent
    // says nothing: its input is not held back.
    pendingInput: () => (reportsTaken ? inputSent - inputTaken : 0),
    onData(listener) {
      listeners.push(listener);
      for (const chunk of early.splice(0)) listener(chunk);
    },
    kill: () => conn.send({ type: 'cancel', id }),
    exited,
  };
}

function notRun(exitCode: number, error: string, started: number, extra: Partial<ExecResult>): ExecResult {
  return { exitCode, signal: null, timedOut: false, aborted: false, truncated: false, bytesOut: 0, bytesErr: 0, durationMs: performance.now() - started, error, errorKind: null, ...extra };
}

/** Paths on an agent's machine are resolved there: the caller must use resolverFor(). */
function resolvedOnTheAgent(name: string): PathResolver {
  const refuse = (): never => {
    throw new Error(`paths on agent ${name} are resolved on the agent: the caller must use resolverFor()`);
  };
  return { realpath: refuse, which: refuse };
}
