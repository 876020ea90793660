// Policy data model: what a loaded policy looks like and what a decision says.

export type Effect = 'allow' | 'deny' | 'ask';

/** Operations known today. Later issues add session.*, network and mcp.* (see KNOWN_OPERATIONS in schema.ts). */
export type Operation =
  | 'execute_binary'
  | 'execute_code'
  | 'read_file'
  | 'write_file'
  | 'list_directory'
  | 'write_stdout'
  | `session.${string}`
  | 'network'
  | `mcp.${string}`;

export interface SourceRef {
  file: string;
  line: number;
}

/** Multi-line redaction: every line from one matching `from` through the next one matching `to`, inclusive. */
export interface RedactBlock {
  from: RegExp;
  to: RegExp;
}

/** Output limits carried by a write_stdout rule. `null` resource in the file means "no limits". */
export interface OutputLimits {
  maxBytes: number | null;
  /** Applied line by line: each match becomes [REDACTED]. */
  redact: RegExp[];
  /** Applied before `redact`: each line of a block becomes [REDACTED]. */
  redactBlocks: RedactBlock[];
}

/** What output's redaction is made of (a write_stdout rule's, without its byte cap). */
export type Redaction = Pick<OutputLimits, 'redact' | 'redactBlocks'>;

export interface Rule {
  /** Index of the rule within its policy (0-based), stable for audit references. */
  index: number;
  operation: Operation;
  effect: Effect;
  /** For execute_binary: names or paths; for file operations: absolute path globs; null for write_stdout without limits. */
  resources: string[] | null;
  /** write_stdout only. */
  output?: OutputLimits;
  /** Optional human explanation from the policy file, echoed in decisions. */
  reason?: string;
  /**
   * execute_code only: the code may also run where there is no OS sandbox (the policy says sandbox: false,
   * or its host has none). Without it such code is refused there, since no static check bounds it.
   */
  unsandboxed?: boolean;
  /**
   * execute_binary allow/ask only: false runs a stage whose programs this rule allows outside the OS
   * sandbox, bounded by the static checks alone (programs that report on the host: ps, df, uptime).
   */
  sandbox?: boolean;
  source: SourceRef;
}

/**
 * `on` (the default, `sandbox: true`): commands run inside the OS sandbox wherever the host has one; the
 * local host must (remux installs bubblewrap), an SSH host without bubblewrap runs them with static checks
 * only, shown in `hosts list`. `required`: a host without a working sandbox is refused. `off`
 * (`sandbox: false`): static checks only, everywhere.
 */
export type SandboxMode = 'on' | 'off' | 'required';

/** Whether a command runs inside the OS sandbox, and if not, why not (quoted by refusals that need it). */
export type Enforcement = { sandbox: true } | { sandbox: false; why: string };

export interface Policy {
  name: string;
  description?: string;
  /** How this policy uses the OS sandbox (bubblewrap): see SandboxMode. */
  sandbox: SandboxMode;
  rules: Rule[];
  source: SourceRef;
}

/** A short, stable reference to the rule behind a decision: "read_only#2 (policies.yaml:14)". */
export interface RuleRef {
  policy: string;
  index: number;
  operation: Operation;
  effect: Effect;
  source: SourceRef;
}

/** One checked capability request, e.g. read_file /var/log/syslog for stage 1. */
export interface Check {
  operation: Operation;
  /** The resource as requested (binary name, path after normalisation and symlink resolution). */
  resource: string;
  /** Which pipeline stage (0-based, counting across the whole command list) asked for it; -1 for whole-command checks. */
  stage: number;
  effect: Effect;
  rule: RuleRef | null;
  reason: string;
}

export interface Decision {
  effect: Effect;
  policy: string;
  /** The rule that decided (the first deny, else the first ask, else null for allow-by-all-checks / no match). */
  rule: RuleRef | null;
  reason: string;
  /** Every check made, in order: the stage-by-stage explanation `policy check` prints. */
  checks: Check[];
  /** Output limits in force when allowed (merged: smallest max, union of redactions and blocks). */
  output: OutputLimits;
  /** The command runs inside the OS sandbox (the enforcement it was decided under). */
  sandbox: boolean;
  /** The working directory the command runs in: the evaluation's, or where its leading `cd`s lead (resolved). */
  cwd: string;
  /** For each stage that runs, which layer bounds what it does. */
  bounds: StageBound[];
}

/**
 * What bounds one stage: `static+sandbox` both layers; `static` the argv checks alone (no sandbox);
 * `sandbox` the OS sandbox alone (the stage runs code remux cannot check); `none`: it runs such code
 * without a sandbox, under a rule with unsandboxed: true.
 */
export interface StageBound {
  stage: number;
  layer: 'static+sandbox' | 'static' | 'sandbox' | 'none';
  /** For `sandbox` and `none`: what runs unchecked code, e.g. "make runs a Makefile's recipes, …". */
  code?: string;
  /** For `static` in a sandboxed command: the execute_binary rule whose sandbox: false runs this stage outside it. */
  outside?: RuleRef;
}

/** How paths and program names are resolved on the host a command targets (local filesystem, or a remote host's answers). */
export interface PathResolver {
  /** Absolute, normalised path (relative ones against cwd) with symlinks resolved as far as the path exists. */
  realpath(path: string, cwd: string): string;
  /** Absolute, symlink-resolved path of a bare program name looked up in the secure PATH, or null if absent. */
  which(name: string): string | null;
}
