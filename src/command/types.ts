// The parsed form of a command string. Produced only by the strict parser (parser.ts);
// everything downstream (policy, exec, remote quoting) works on these values, never on the string.

/** A redirection performed by remux itself (never by a shell). `pos` is the 0-based offset of the operator. */
export type Redirect =
  | { kind: 'read'; fd: 0; path: string; pos: number } //             < path
  | { kind: 'write'; fd: 1 | 2; path: string; append: boolean; pos: number } // > >> 2> 2>> 1> 1>>
  | { kind: 'dup'; fd: 2; to: 1; pos: number }; //                    2>&1

/** One simple command of a pipeline: its argv (quotes removed) and its redirections in source order. */
export interface Stage {
  argv: string[];
  redirects: Redirect[];
  /** 0-based offset of the stage's first character in the source string. */
  pos: number;
}

export interface Pipeline {
  stages: Stage[];
}

export type Connector = '&&' | '||' | ';';

/** A sequence of pipelines joined by && || ; — `op` is the connector *before* this pipeline (null for the first). */
export interface CommandList {
  items: Array<{ op: Connector | null; pipeline: Pipeline }>;
}

/** Thrown for anything the strict grammar does not accept. */
export class ParseError extends Error {
  constructor(
    /** Human name of the rejected construct, e.g. "command substitution $(…)", "unquoted glob *". */
    readonly construct: string,
    /** 0-based offset in the source string where the construct starts. */
    readonly position: number,
    message?: string,
  ) {
    super(message ?? `${construct} is not allowed (at column ${position + 1})`);
    this.name = 'ParseError';
  }
}

/**
 * What one stage's argv asks of the host, found by static analysis (analysis.ts).
 * Paths are returned as written (possibly relative); the policy engine normalises and resolves them.
 */
export interface ArgvAnalysis {
  /** Every program this argv would execute, outermost first (`timeout 5 nice cat f` → timeout, nice, cat). */
  binaries: string[];
  /** Path arguments the programs read. */
  reads: string[];
  /** Path arguments the programs write, create or delete. */
  writes: string[];
  /** Directories the programs list or traverse. */
  lists: string[];
  /** Command strings run by a shell wrapper (`sh -c STRING`); the policy engine parses and checks them too. */
  nested: string[];
  /** Set when the argv does something that cannot be checked statically: the whole command is denied with this reason. */
  refusal: string | null;
  /**
   * Set when the argv makes a program reach paths that are not on its command line (symlinks followed
   * while recursing, link targets dereferenced): only the OS sandbox can confine that, so the command is
   * allowed only when it runs inside one. Names the option, e.g. "grep -R follows symlinks met while recursing".
   */
  sandboxOnly: string | null;
  /**
   * Programs of this argv that run code remux cannot read (an interpreter's script or `-c`, a shell's
   * script or input, a build tool's Makefile, a package manager's scripts, git's hooks and repository
   * config): each needs an execute_code grant, and the command then runs only inside the OS sandbox.
   */
  code: CodeRun[];
  /**
   * Programs told by their first operand to do what another of their names does (`systemctl reboot` is
   * `reboot`): deny and ask rules naming that name apply to them too.
   */
  actsAs: ActsAs[];
}

/** `program` as written in argv, acting as `name`. */
export interface ActsAs {
  program: string;
  name: string;
}

/** One program that runs unchecked code: `program` as written in argv, `does` completes "<program> …". */
export interface CodeRun {
  program: string;
  does: string;
}
