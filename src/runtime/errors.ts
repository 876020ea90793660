// Errors of the runtime, as TypeScript sees them.
import type { Decision } from '../policy/types.js';

/** An exception raised on the host: its Python type name, message, errno and traceback. */
export class RemoteError extends Error {
  constructor(
    /** The Python exception's type name: FileNotFoundError, PermissionError, ValueError, EncodeError, … */
    readonly type: string,
    message: string,
    readonly errno: number | null,
    /** The traceback as the host printed it. */
    readonly remoteTraceback: string | null,
  ) {
    super(`${type}: ${message}`);
    this.name = 'RemoteError';
  }
}

/** The link broke or the peer said something it should not: every call on it fails with this. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/**
 * The host sent a call more chunks than it may: past the window the call set (CallOptions.window), or,
 * for a call without one, more than a frame's worth waiting untaken. The call fails with it and is
 * cancelled on the host; the chunk and whatever comes after are dropped, and the link's other calls go on.
 */
export class WindowOverrunError extends ProtocolError {
  constructor(
    /** The call: Tool.method. */
    readonly call: string,
    readonly callId: number,
    /** Bytes already held for the call when the chunk came: unacknowledged (a window), or untaken. */
    readonly held: number,
    /** The chunk's size, as its frame counts it. */
    readonly chunk: number,
    /** The window, or for a call without one the frame cap. */
    readonly limit: number,
    windowed: boolean,
  ) {
    super(
      windowed
        ? `${call} (call ${callId}): the host sent a chunk of ${chunk} bytes with ${held} bytes already unacknowledged, past the call's window of ${limit}; the call was cancelled`
        : `${call} (call ${callId}): the host sent a chunk of ${chunk} bytes with ${held} bytes of chunks untaken, more than a call without a window may hold (${limit}); the call was cancelled`,
    );
    this.name = 'WindowOverrunError';
  }
}

/** A call's own timeout passed; the host was told to stop the work. */
export class CallTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: no result within ${ms} ms; the host was told to stop it`);
    this.name = 'CallTimeoutError';
  }
}

/** A call's arguments are wrong: refused (and audited) before anything is sent. */
export class ArgumentError extends TypeError {
  override name = 'ArgumentError';
  /** The audit record of the refusal, once recorded. */
  actionId: number | null = null;
}

/** The policy refused the call, or the scope, or an approver: nothing was sent to the host. */
export class DeniedError extends Error {
  constructor(
    message: string,
    /** The audit record of the refusal. */
    readonly actionId: number | null,
    /** The policy's decision, when a policy refused it (what was denied, under which rule). */
    readonly decision: Decision | null = null,
  ) {
    super(message);
    this.name = 'DeniedError';
  }
}

/** A custom tool's value from the host does not have the type its definition declares. */
export class ResultTypeError extends Error {
  constructor(
    what: string,
    /** What is wrong, where in the value (zod's issues, pretty-printed). */
    readonly problems: string,
  ) {
    super(`${what}: the host's value does not have the declared result type:\n${problems}`);
    this.name = 'ResultTypeError';
  }
}

/** A custom tool's arguments do not have the types its definition declares: nothing was sent. */
export class ArgumentTypeError extends ArgumentError {
  constructor(
    what: string,
    readonly problems: string,
  ) {
    super(`${what}: the arguments do not have the declared types:\n${problems}`);
    this.name = 'ArgumentTypeError';
  }
}
