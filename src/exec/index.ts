// Local execution without a shell: public surface of src/exec.

export { runLocal, resolveProgram } from './local.js';
export { bwrapAvailable, bwrapOptions, probeBwrap, sandboxLayout } from './sandbox.js';
export type { SandboxLayout } from './sandbox.js';
export { OutputGate, REDACTED, MAX_LINE_BUFFER } from './output.js';
export type { Destination, OutputSinks, OutputSource } from './output.js';
export type { BwrapInfo, ExecErrorKind, ExecRequest, ExecResult, SandboxSpec } from './types.js';
