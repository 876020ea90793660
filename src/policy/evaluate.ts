// The static policy check: every program, path and redirection of a parsed command list against one policy.
import { posix } from 'node:path';
import { analyzeArgv } from '../command/analysis.js';
import { leadingCd } from '../command/cd.js';
import { showInvisible } from '../command/invisible.js';
import { parseCommand } from '../command/parser.js';
import { lookupTool } from '../command/tools.js';
import type { CodeRun, CommandList, Stage } from '../command/types.js';
import { compileGlob, globPrefix } from './glob.js';
import type { GlobMatcher } from './glob.js';
import { ANY_PROGRAM } from './schema.js';
import type { PathOperation } from './schema.js';
import type { SandboxSpec } from '../exec/types.js';
import type { Check, Decision, Effect, Enforcement, Operation, OutputLimits, PathResolver, Policy, Redaction, Rule, RuleRef, StageBound } from './types.js';

export interface EvalContext {
  /** Absolute directory relative paths are taken against. */
  cwd: string;
  resolver: PathResolver;
  /** Whether the command will run inside the OS sandbox on its host; default: not (static checks only). */
  enforcement?: Enforcement;
}

const NO_SANDBOX: Enforcement = { sandbox: false, why: 'no OS sandbox' };

/**
 * Where a program looked up by name only "lives" (hosts/remote-resolver.ts: under rules that allow programs
 * by name alone the host is not asked): a stand-in, never shown; the check names the program as written.
 */
export const BY_NAME_DIR = '/(secure PATH)';

const WRITABLE_PROGRAM = 'is run from a path this policy lets callers write, so what it runs cannot be checked';

/** `sh -c "sh -c '…'"` deeper than this is refused rather than followed. */
const MAX_NESTING = 8;

interface CompiledRule {
  rule: Rule;
  ref: RuleRef;
  /** execute_binary: bare program names. */
  names: string[];
  /** execute_binary: the `*` entry (any program in the secure PATH). */
  anyProgram: boolean;
  /** Path globs as written, and their matchers. */
  globs: string[];
  matchers: GlobMatcher[];
}

interface CompiledPolicy {
  byOperation: Map<Operation, CompiledRule[]>;
  output: { rule: CompiledRule | null; limits: OutputLimits; reason: string };
}

// Policies are immutable once loaded, so their matchers are built once per Policy object.
const compiledPolicies = new WeakMap<Policy, CompiledPolicy>();

function compile(policy: Policy): CompiledPolicy {
  let compiled = compiledPolicies.get(policy);
  if (compiled) return compiled;
  const byOperation = new Map<Operation, CompiledRule[]>();
  for (const rule of policy.rules) {
    const entries = rule.resources ?? [];
    const globs = entries.filter((e) => e.includes('/'));
    const c: CompiledRule = {
      rule,
      ref: { policy: policy.name, index: rule.index, operation: rule.operation, effect: rule.effect, source: rule.source },
      names: entries.filter((e) => !e.includes('/') && e !== ANY_PROGRAM),
      anyProgram: entries.includes(ANY_PROGRAM),
      globs,
      matchers: globs.map(compileGlob),
    };
    const list = byOperation.get(rule.operation);
    if (list) list.push(c);
    else byOperation.set(rule.operation, [c]);
  }
  compiled = { byOperation, output: outputVerdict(policy.name, byOperation.get('write_stdout') ?? []) };
  compiledPolicies.set(policy, compiled);
  return compiled;
}

/**
 * The redaction a policy's write_stdout rules ask for, to apply to a file's content handed to the caller
 * (a read_file action, the runtime's readText/readBytes) as to a command's output: `cat FILE` and reading
 * FILE give the same text. The byte cap is a file read's own; with no write_stdout rule, none.
 */
export function outputRedaction(policy: Policy): Redaction {
  const { redact, redactBlocks } = compile(policy).output.limits;
  return { redact, redactBlocks };
}

/** write_stdout: deny > ask > allow like any check; limits merge over the rules that do not deny. */
function outputVerdict(policy: string, rules: CompiledRule[]): CompiledPolicy['output'] {
  const rule = decide(rules, () => true);
  if (!rule) return { rule, limits: { maxBytes: null, redact: [], redactBlocks: [] }, reason: `write_stdout: policy ${policy} grants no write_stdout` };
  if (rule.rule.effect === 'deny') return { rule, limits: { maxBytes: 0, redact: [], redactBlocks: [] }, reason: `write_stdout: ${verdictOf(rule, policy)}` };
  const usable = rules.filter((r) => r.rule.effect !== 'deny');
  const limits: OutputLimits = {
    maxBytes: minLimit(usable.map((r) => r.rule.output?.maxBytes ?? null)),
    redact: usable.flatMap((r) => r.rule.output?.redact ?? []),
    redactBlocks: usable.flatMap((r) => r.rule.output?.redactBlocks ?? []),
  };
  return { rule, limits, reason: `write_stdout${describeLimits(limits)}: ${verdictOf(rule, policy)}` };
}

/** What every front end says of a policy name that `known` lacks. */
/** `namedBy`: where the name came from when the command did not give it (config.yaml's default_policy, a principal's scope). */
export function unknownPolicyMessage(name: string, known: ReadonlyMap<string, unknown>, namedBy?: string): string {
  return `unknown policy "${name}"${namedBy ? `, named by ${namedBy},` : ''} (known: ${[...known.keys()].join(', ') || 'none'})`;
}

/**
 * Decides a parsed command list under a policy. Per check: the first matching deny rule, else the first
 * matching ask rule, else the first matching allow rule; nothing matching denies. Overall: any deny
 * denies, else any ask asks, else allow. Leading `cd DIR &&` stages set the working directory of the
 * rest (command/cd.ts): each DIR is checked as list_directory, and the decision's cwd is where they lead.
 */
export function evaluate(policy: Policy, list: CommandList, ctx: EvalContext): Decision {
  if (!ctx.cwd.startsWith('/')) throw new Error(`evaluate: cwd must be absolute, got ${JSON.stringify(ctx.cwd)}`);
  const run = new Evaluation(policy, compile(policy), ctx);
  const cd = leadingCd(list);
  if (cd.refusal !== null) run.refuse('cd', cd.refusal.stage, cd.refusal.reason);
  for (const { dir, stage } of cd.dirs) run.changeDirectory(dir, stage);
  let stage = cd.dirs.length;
  for (const item of cd.rest.items) {
    for (const s of item.pipeline.stages) {
      // A refused cd is reported once, by the refusal above.
      if (cd.refusal === null || s.argv[0] !== 'cd') run.stage(s, stage, 0);
      stage++;
    }
  }
  const output = run.output();

  const checks = run.checks;
  const decisive = checks.find((c) => c.effect === 'deny') ?? checks.find((c) => c.effect === 'ask');
  return {
    effect: decisive?.effect ?? 'allow',
    policy: policy.name,
    rule: decisive?.rule ?? null,
    reason: decisive?.reason ?? `allowed: all ${checks.length} checks pass under policy ${policy.name}`,
    checks,
    output,
    sandbox: (ctx.enforcement ?? NO_SANDBOX).sandbox,
    cwd: run.cwd,
    bounds: run.bounds(cd.dirs.length, stage),
  };
}

/**
 * Decides one file action (read_file, write_file, list_directory of `path`) under a policy, with the
 * same matching as a command's path arguments: the path and the deny/ask rules' prefixes are resolved
 * through ctx.resolver (on the host), and the verdict names the rule. No write_stdout check: a file
 * action's output bound is its own (core/perform-file.ts).
 */
export function evaluatePath(policy: Policy, op: PathOperation, path: string, ctx: EvalContext): Decision {
  if (!ctx.cwd.startsWith('/')) throw new Error(`evaluatePath: cwd must be absolute, got ${JSON.stringify(ctx.cwd)}`);
  const run = new Evaluation(policy, compile(policy), ctx);
  run.path(op, path);
  const [check] = run.checks as [Check];
  return {
    effect: check.effect,
    policy: policy.name,
    rule: check.rule,
    reason: check.reason,
    checks: run.checks,
    output: { maxBytes: null, redact: [], redactBlocks: [] },
    sandbox: false,
    cwd: ctx.cwd,
    // No program runs: the static check of the path is the whole bound (with no-follow opens on the host).
    bounds: [],
  };
}

interface CheckResult {
  /** What was checked: the resolved path or program. */
  resource: string;
  rule: CompiledRule | null;
  /** Replaces the rule verdict in the reason (e.g. "not found in secure PATH"). */
  note?: string;
  /** The check denies whatever the rule says (the note says why). */
  deny?: boolean;
}

/** State of one evaluate() call; its memo never outlives the call, so a later symlink swap is seen. */
class Evaluation {
  readonly checks: Check[] = [];
  /** Where relative paths are taken from: the context's cwd, moved by leading cds. */
  cwd: string;
  /** Stages allowed (or asked) to run unchecked code, with what runs it. */
  private readonly code = new Map<number, string>();
  /** Keyed by cwd and path: a relative path means another file once a cd moved the cwd. */
  private readonly realpaths = new Map<string, string>();
  private readonly programs = new Map<string, string | null>();
  /** How the stage being checked runs: the command's enforcement, or static checks only for a stage let out. */
  private enforcement: Enforcement;
  /** Stages run outside the sandbox, by the execute_binary rule (sandbox: false) that lets them out. */
  private readonly outside = new Map<number, CompiledRule>();
  /** Stages that need the sandbox whatever their rules say: code remux cannot check, options only it confines. */
  private readonly confined = new Set<number>();

  constructor(
    private readonly policy: Policy,
    private readonly compiled: CompiledPolicy,
    private readonly ctx: EvalContext,
  ) {
    this.cwd = ctx.cwd;
    this.enforcement = ctx.enforcement ?? NO_SANDBOX;
  }

  /** A leading `cd DIR`: DIR must be listable, and the rest runs there (resolved, as checked). */
  changeDirectory(dir: string, index: number): void {
    this.checkPath('list_directory', dir, index);
    const last = this.checks.at(-1);
    if (last?.effect !== 'deny') this.cwd = last?.resource ?? this.cwd;
  }

  refuse(program: string, index: number, reason: string): void {
    this.push('execute_binary', program, index, null, reason);
  }

  /** Which layer bounds each running stage (stages first…end-1; the leading cds do not run). */
  bounds(first: number, end: number): StageBound[] {
    const out: StageBound[] = [];
    for (let stage = first; stage < end; stage++) {
      const outside = this.outside.get(stage);
      if (outside) {
        out.push({ stage, layer: 'static', outside: outside.ref });
        continue;
      }
      const code = this.code.get(stage);
      // Without a sandbox, code that passed its check did so under unsandboxed: true.
      if (this.enforcement.sandbox) out.push(code ? { stage, layer: 'sandbox', code } : { stage, layer: 'static+sandbox' });
      else out.push(code ? { stage, layer: 'none', code } : { stage, layer: 'static' });
    }
    return out;
  }

  /**
   * A stage of the command. In the sandbox, a stage whose programs are all allowed by execute_binary rules
   * with sandbox: false runs outside it (programs that report on the host: ps, df): it is checked again as
   * it will run, with static checks only. Code remux cannot check, and options only the sandbox can
   * confine, keep a stage inside whatever its rules say.
   */
  stage(s: Stage, index: number, depth: number): void {
    const from = this.checks.length;
    this.checkStage(s, index, depth);
    if (depth > 0 || !this.enforcement.sandbox) return;
    const rule = this.outsideRule(index, from);
    if (rule === null) return;
    this.checks.length = from;
    this.outside.set(index, rule);
    const sandboxed = this.enforcement;
    const where = ruleAt(rule.ref);
    this.enforcement = { sandbox: false, why: `rule ${where} runs it outside the sandbox: sandbox: false` };
    try {
      this.checkStage(s, index, depth);
    } finally {
      this.enforcement = sandboxed;
    }
    // remux would open them itself, outside the sandbox, where a link swapped in after the check could
    // lead anywhere its user can write; inside, the sandbox's mounts bound them. /dev/null is the host's own.
    for (const r of s.redirects) {
      if (r.kind === 'dup' || r.path === '/dev/null') continue;
      const op = r.kind === 'read' ? 'read_file' : 'write_file';
      const reason =
        `${op} ${show(r.path)}: this stage runs outside the OS sandbox (rule ${where} says sandbox: false), where remux would open it with its own rights; ` +
        `pipe the output to a sandboxed program instead (… | cat ${r.kind === 'read' ? '' : '> '}${show(r.path)})`;
      this.push(op, r.path, index, null, reason);
    }
  }

  /** The sandbox: false rule that lets the stage checked since `from` out of the sandbox, or null. */
  private outsideRule(index: number, from: number): CompiledRule | null {
    if (this.confined.has(index)) return null;
    const programs = this.checks.slice(from).filter((c) => c.operation === 'execute_binary' || c.operation === 'execute_code');
    if (programs.length === 0 || programs.some((c) => c.operation === 'execute_code')) return null;
    const rules = programs.map((c) => this.rulesFor('execute_binary').find((r) => r.ref === c.rule));
    if (!rules.every((r) => r?.rule.sandbox === false)) return null;
    return rules[0] ?? null;
  }

  private checkStage(s: Stage, index: number, depth: number): void {
    const analysis = analyzeArgv(s.argv, (program) => this.toolName(program));
    if (analysis.sandboxOnly !== null || analysis.code.length > 0) this.confined.add(index);
    if (analysis.refusal !== null) {
      const program = s.argv[0] ?? '';
      this.push('execute_binary', program, index, null, `${show(s.argv.join(' '))}: ${analysis.refusal}`);
    } else {
      const enforcement = this.enforcement;
      if (analysis.sandboxOnly !== null && !enforcement.sandbox) {
        const reason = `${analysis.sandboxOnly}, which only the OS sandbox can confine; this command would run with static checks only (${enforcement.why})`;
        this.push('execute_binary', s.argv[0] ?? '', index, null, reason);
      }
      for (const program of analysis.binaries) this.checkProgram(program, index);
      for (const { program, name } of analysis.actsAs) this.checkActsAs(program, name, index);
      for (const code of analysis.code) this.checkCode(code, index);
      for (const program of analysis.binaries) if (this.writable(program)) this.checkCode({ program, does: WRITABLE_PROGRAM }, index);
      // A path both read (or written) and listed is a tree the program goes through: what lies below counts.
      const trees = new Set(analysis.lists);
      for (const path of analysis.reads) this.checkPath('read_file', path, index, trees.has(path));
      for (const path of analysis.writes) {
        this.checkPath('write_file', path, index, trees.has(path));
        // In the sandbox, a link in a directory it shows read-only stays as it is.
        if (!this.enforcement.sandbox) this.checkLink(path, index);
      }
      for (const path of analysis.lists) this.checkPath('list_directory', path, index);
      for (const nested of analysis.nested) this.nested(nested, index, depth);
    }
    for (const r of s.redirects) {
      if (r.kind === 'read') this.checkPath('read_file', r.path, index);
      else if (r.kind === 'write') this.checkPath('write_file', r.path, index);
    }
  }

  /** One path check on its own (evaluatePath). */
  path(op: PathOperation, path: string): void {
    this.checkPath(op, path, 0);
  }

  /** write_stdout for the whole command: the same verdict for every command under this policy. */
  output(): OutputLimits {
    const { rule, limits, reason } = this.compiled.output;
    this.push('write_stdout', '', -1, rule, reason);
    return { maxBytes: limits.maxBytes, redact: [...limits.redact], redactBlocks: [...limits.redactBlocks] };
  }

  private nested(source: string, index: number, depth: number): void {
    if (depth >= MAX_NESTING) {
      this.push('execute_binary', source, index, null, `nested command ${show(source)}: nested more than ${MAX_NESTING} levels deep`);
      return;
    }
    let list: CommandList;
    try {
      list = parseCommand(source);
    } catch (err) {
      this.push('execute_binary', source, index, null, `nested command ${show(source)}: ${(err as Error).message}`);
      return;
    }
    for (const item of list.items) for (const s of item.pipeline.stages) this.checkStage(s, index, depth + 1);
  }

  private checkProgram(program: string, index: number): void {
    this.guarded('execute_binary', program, index, () => this.programRule('execute_binary', program));
  }

  /**
   * A program doing what its link `name` does (`systemctl reboot`): a deny or ask rule naming `name`
   * applies as if it ran under that name. Its allow was checked as itself (checkProgram).
   */
  private checkActsAs(program: string, name: string, index: number): void {
    const rule = decide(
      this.rulesFor('execute_binary').filter((r) => r.rule.effect !== 'allow'),
      (r) => r.names.includes(name),
    );
    if (rule === null) return;
    this.guarded('execute_binary', program, index, () => ({
      resource: this.programRule('execute_binary', program).resource,
      rule,
      note: `acts as ${name}: ${verdictOf(rule, this.policy.name)}`,
    }));
  }

  /** The program, then its rule among `op`'s: execute_binary and execute_code match programs alike. */
  private programRule(op: 'execute_binary' | 'execute_code', program: string): CheckResult {
    if (program === '') return { resource: '', rule: null, note: 'empty program name' };
    const bare = !program.includes('/');
    const real = bare ? this.which(program) : this.realpath(program);
    if (real === null) return { resource: program, rule: null, note: 'not found in secure PATH' };
    const name = posix.basename(program);
    const lexical = bare ? null : posix.resolve(this.cwd, program);
    const rule = decide(this.rulesFor(op), (r) =>
      r.rule.effect === 'allow' ? this.allowsProgram(r, name, real) : this.flagsProgram(r, name, real, lexical),
    );
    const note = rule === null && lexical !== null ? this.unmatched(op, lexical, real) : undefined;
    // Not looked up (BY_NAME_DIR): named as written, as the host will find it, not as a path it does not have.
    const resource = real.startsWith(`${BY_NAME_DIR}/`) ? program : real;
    return note === undefined ? { resource, rule } : { resource, rule, note };
  }

  /**
   * The name whose tool table entry describes what `program` runs. Its own name, unless it resolves to a
   * file remux knows by another name: a link `./foo` or `./cat` to bash runs bash, and `pager` runs less,
   * whatever they are called (and allow rules allow such a link as the file it leads to). A name the
   * secure PATH itself gives that file and the table knows stays: multi-call programs act on the name
   * they are run as (`xzcat` is xz, `sudoedit` is sudo).
   */
  private toolName(program: string): string {
    const name = posix.basename(program);
    let real: string | null;
    try {
      real = program.includes('/') ? this.realpath(program) : this.which(program);
    } catch {
      return name; // its execute_binary check denies
    }
    const realName = real === null ? name : posix.basename(real);
    if (realName === name || lookupTool(realName) === undefined) return name;
    return lookupTool(name) !== undefined && this.foundAs(name, real) ? name : realName;
  }

  /**
   * Whether the secure PATH finds `real` for `name`. A name the host will not say where it is (an outbound
   * agent answers only for programs its own policy may run) is not: the program is then taken as the
   * file it is, never as the host's own program of that name.
   */
  private foundAs(name: string, real: string | null): boolean {
    try {
      return this.which(name) === real;
    } catch {
      return false;
    }
  }

  /**
   * A program run by its path that this policy lets callers write (`./build.sh`, `/tmp/tool`) is code
   * they chose, like a script given to bash. The secure PATH's programs, by name or by path
   * (`/usr/bin/cat`), are the host's own, whatever the policy lets callers write.
   */
  private writable(program: string): boolean {
    if (!program.includes('/')) return false;
    let real: string;
    try {
      real = this.realpath(program);
    } catch {
      return false; // its execute_binary check already denies
    }
    if (this.foundAs(posix.basename(program), real) || this.foundAs(posix.basename(real), real)) return false;
    const lexical = posix.resolve(this.cwd, program);
    const rule = decide(this.rulesFor('write_file'), (r) => (r.rule.effect === 'allow' ? r.matchers.some((m) => m.test(real)) : this.flagsPath(r, real, lexical)));
    return rule !== null && rule.rule.effect !== 'deny';
  }

  /**
   * A program that runs code remux cannot check needs an execute_code rule, whatever execute_binary says;
   * since no static check bounds that code, an allow or ask holds only inside the OS sandbox, unless the
   * rule says unsandboxed: true.
   */
  private checkCode(code: CodeRun, index: number): void {
    const name = posix.basename(code.program);
    const does = `${name} ${code.does}`;
    this.guarded('execute_code', code.program, index, () => {
      const found = this.programRule('execute_code', code.program);
      const { rule } = found;
      if (found.note !== undefined) return found;
      if (rule === null) {
        return { ...found, note: `${does}; no execute_code rule of policy ${this.policy.name} allows ${name} (add one to run it in the OS sandbox)` };
      }
      if (rule.rule.effect === 'deny') return { ...found, note: `${does}; ${verdictOf(rule, this.policy.name)}` };
      if (this.enforcement.sandbox || rule.rule.unsandboxed === true) this.code.set(index, does);
      if (this.enforcement.sandbox) return { ...found, note: `${does}; ${verdictOf(rule, this.policy.name)}, bounded by the OS sandbox` };
      if (rule.rule.unsandboxed === true) return { ...found, note: `${does}; ${verdictOf(rule, this.policy.name)} with unsandboxed: true, so nothing bounds that code (${this.enforcement.why})` };
      const note =
        `${does}; ${verdictOf(rule, this.policy.name)} only inside the OS sandbox, but this command would run with static checks only ` +
        `(${this.enforcement.why}); add unsandboxed: true to that rule to run such code without the sandbox`;
      return { ...found, note, deny: true };
    });
  }

  /**
   * Allow needs the very file: a rule naming `cat` allows `cat`, `/usr/bin/cat` or a link to it, but not
   * `./cat`. The name must also agree unless the file itself is called so, because multi-call binaries
   * (busybox) act on the name they are run as: `/bin/rm` may be the same file as `cat`.
   */
  private allowsProgram(r: CompiledRule, name: string, real: string): boolean {
    const realName = posix.basename(real);
    for (const n of r.names) if ((name === n || realName === n) && real === this.which(n)) return true;
    if (r.anyProgram && real === this.which(name)) return true;
    return r.matchers.some((m) => m.test(real));
  }

  /** Deny and ask cast a wider net: the name as run, the file, the path as written, the rule's real prefix. */
  private flagsProgram(r: CompiledRule, name: string, real: string, lexical: string | null): boolean {
    if (r.anyProgram) return true;
    const realName = posix.basename(real);
    for (const n of r.names) if (name === n || (realName === n && real === this.which(n))) return true;
    return this.flagsPath(r, real, lexical);
  }

  /**
   * `tree`: the program reads or writes all of the directory (grep -r, tar -c, rm -r), so a deny or ask
   * rule for anything below it counts too: `grep -r x /home` reads /home/u/.ssh. Not the rules the
   * sandbox enforces by its mounts (a literal path or tree is hidden or read-only there).
   */
  private checkPath(op: PathOperation, path: string, index: number, tree = false): void {
    this.guarded(op, path, index, () => {
      const real = this.realpath(path);
      const lexical = posix.resolve(this.cwd, path);
      const below = new Set<CompiledRule>();
      const rule = decide(this.rulesFor(op), (r) => {
        if (r.rule.effect === 'allow') return r.matchers.some((m) => m.test(real));
        if (this.flagsPath(r, real, lexical)) return true;
        if (tree && this.flagsBelow(r, real, lexical)) below.add(r);
        return below.has(r);
      });
      if (rule === null) {
        const note = this.unmatched(op, lexical, real);
        return note === undefined ? { resource: real, rule } : { resource: real, rule, note };
      }
      if (!below.has(rule)) return { resource: real, rule };
      const note = `${verdictOf(rule, this.policy.name)}; it covers paths below ${show(real)}, which the command goes through`;
      return { resource: real, rule, note };
    });
  }

  /**
   * Why no rule allows `real`, naming an allow rule that matches only the path as written (`/var/run/**`
   * or `/bin/cat`, where /var/run and /bin are links): otherwise such a rule looks as if it should apply.
   */
  private unmatched(op: Operation, lexical: string, real: string): string | undefined {
    if (lexical === real) return undefined;
    const rule = this.rulesFor(op).find((r) => r.rule.effect === 'allow' && r.matchers.some((m) => m.test(lexical)));
    if (rule === undefined) return undefined;
    return `${verdictOf(null, this.policy.name)}: ${ruleAt(rule.ref)} matches only the path as written, and an allow rule must match it with symlinks resolved`;
  }

  /**
   * A written path that is a symlink: rm, mv onto it, sed -i or ln -f replace or remove the link itself,
   * in its own directory, not what it leads to; so that place must be writable too.
   */
  private checkLink(path: string, index: number): void {
    const slash = path.lastIndexOf('/');
    const name = path.slice(slash + 1);
    if (name === '' || name === '.' || name === '..') return;
    let entry: string;
    try {
      const parent = this.realpath(slash < 0 ? '.' : path.slice(0, slash) || '/');
      entry = parent === '/' ? `/${name}` : `${parent}/${name}`;
      if (entry === this.realpath(path)) return;
    } catch {
      return; // the path's own check denies
    }
    this.guarded('write_file', path, index, () => {
      const rule = decide(this.rulesFor('write_file'), (r) => (r.rule.effect === 'allow' ? r.matchers.some((m) => m.test(entry)) : this.flagsPath(r, entry, entry)));
      if (rule?.rule.effect === 'allow') return { resource: entry, rule };
      return { resource: entry, rule, note: `the symlink itself, which the command may replace or remove: ${verdictOf(rule, this.policy.name)}` };
    });
  }

  /** Deny and ask rules that may match below `real` (see checkPath), resolved like flagsPath does. */
  private flagsBelow(r: CompiledRule, real: string, lexical: string): boolean {
    return r.globs.some((glob, i) => {
      if (this.enforcement.sandbox && wholeTree(glob) !== null) return false;
      const m = r.matchers[i] as GlobMatcher;
      if (m.below(real) || m.below(lexical)) return true;
      const prefix = globPrefix(glob);
      let realPrefix: string;
      try {
        realPrefix = this.realpath(prefix);
      } catch {
        return false;
      }
      return realPrefix !== prefix && compileGlob(escapeGlob(realPrefix) + glob.slice(prefix.length)).below(real);
    });
  }

  /**
   * Deny/ask path rules match the resolved path, the path as written (normalised), or the resolved path
   * against the rule with its literal prefix resolved: deny /var/run/** also covers /run/... when
   * /var/run is a link. Allow rules get none of this: allowing /tmp/x/** must not follow /tmp/x if it
   * becomes a link elsewhere.
   */
  private flagsPath(r: CompiledRule, real: string, lexical: string | null): boolean {
    for (const [i, m] of r.matchers.entries()) {
      if (m.test(real) || (lexical !== null && m.test(lexical))) return true;
      const glob = r.globs[i] as string;
      const prefix = globPrefix(glob);
      let realPrefix: string;
      try {
        realPrefix = this.realpath(prefix);
      } catch {
        continue;
      }
      if (realPrefix !== prefix && compileGlob(escapeGlob(realPrefix) + glob.slice(prefix.length)).test(real)) return true;
    }
    return false;
  }

  /** Runs one check; a resolver failure (loop, too long, unreadable) denies with its message. */
  private guarded(
    op: Operation,
    requested: string,
    index: number,
    check: () => CheckResult,
  ): void {
    let result: CheckResult;
    try {
      result = check();
    } catch (err) {
      this.push(op, requested, index, null, `${op} ${show(requested)}: cannot be checked: ${(err as Error).message}`);
      return;
    }
    const { resource, rule, note, deny } = result;
    const from = resource !== requested ? ` (resolved from ${show(requested)})` : '';
    this.push(op, resource, index, deny ? null : rule, `${op} ${show(resource)}: ${note ?? verdictOf(rule, this.policy.name)}${from}`);
  }

  private push(op: Operation, resource: string, stage: number, rule: CompiledRule | null, reason: string): void {
    const effect: Effect = rule?.rule.effect ?? 'deny';
    this.checks.push({ operation: op, resource, stage, effect, rule: rule?.ref ?? null, reason });
  }

  private rulesFor(op: Operation): CompiledRule[] {
    return this.compiled.byOperation.get(op) ?? [];
  }

  private realpath(path: string): string {
    const key = path.startsWith('/') ? path : `${this.cwd}\0${path}`;
    let real = this.realpaths.get(key);
    if (real === undefined) {
      real = this.ctx.resolver.realpath(path, this.cwd);
      this.realpaths.set(key, real);
    }
    return real;
  }

  private which(name: string): string | null {
    let real = this.programs.get(name);
    if (real === undefined) {
      real = this.ctx.resolver.which(name);
      this.programs.set(name, real);
    }
    return real;
  }
}

/** The first matching deny, else the first matching ask, else the first matching allow. */
function decide(rules: readonly CompiledRule[], matches: (r: CompiledRule) => boolean): CompiledRule | null {
  let ask: CompiledRule | null = null;
  let allow: CompiledRule | null = null;
  for (const r of rules) {
    const effect = r.rule.effect;
    if (effect === 'deny') {
      if (matches(r)) return r;
    } else if (effect === 'ask') {
      if (!ask && matches(r)) ask = r;
    } else if (!ask && !allow && matches(r)) {
      allow = r;
    }
  }
  return ask ?? allow;
}

/** `read_only#3 (policies.yaml:14)` */
export function ruleAt(ref: RuleRef): string {
  return `${ref.policy}#${ref.index} (${posix.basename(ref.source.file)}:${ref.source.line})`;
}

function verdictOf(rule: CompiledRule | null, policy: string): string {
  if (!rule) return `no rule of policy ${policy} allows it`;
  const { ref } = rule;
  const where = ruleAt(ref);
  const why = rule.rule.reason ? `: ${rule.rule.reason}` : '';
  if (ref.effect === 'deny') return `denied by ${where}${why}`;
  if (ref.effect === 'ask') return `needs approval under ${where}${why}`;
  return `allowed by ${where}`;
}

function minLimit(limits: Array<number | null>): number | null {
  const set = limits.filter((l): l is number => l !== null);
  return set.length > 0 ? Math.min(...set) : null;
}

function describeLimits(limits: OutputLimits): string {
  const parts: string[] = [];
  if (limits.maxBytes !== null) parts.push(`at most ${limits.maxBytes} bytes`);
  const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;
  if (limits.redact.length > 0) parts.push(plural(limits.redact.length, 'redaction pattern', 'redaction patterns'));
  if (limits.redactBlocks.length > 0) parts.push(plural(limits.redactBlocks.length, 'redaction block', 'redaction blocks'));
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

/** A literal path as a glob matching only itself. */
function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]{}]/g, '[$&]');
}

/** Untrusted text in a reason: bounded, and quoted when it holds blanks or control characters. */
function show(text: string): string {
  const cut = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  return /[\s\x00-\x1f\x7f-\x9f\ud800-\udfff]/.test(cut) ? JSON.stringify(cut) : cut;
}

/**
 * Whether a rule of `policy` that may grant something (allow, or ask) could apply at `path` (absolute,
 * normalised, symlinks resolved): one of its path globs (read_file, write_file, list_directory, or a
 * program's path) matches the path, a path below it (a listing or a `cd` goes through it), or a path above
 * it (a program going through that tree reaches it). An outbound agent tells its gateway about such paths only.
 */
export function mayReach(policy: Policy, path: string): boolean {
  const above = ancestors(path);
  for (const rules of compile(policy).byOperation.values()) {
    for (const r of rules) {
      if (r.rule.effect !== 'deny' && r.matchers.some((m) => m.below(path) || above.some((dir) => m.test(dir)))) return true;
    }
  }
  return false;
}

/** `/a/b/c` → `/a/b`, `/a`, `/`. */
function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let at = path.lastIndexOf('/'); at > 0; at = path.lastIndexOf('/', at - 1)) out.push(path.slice(0, at));
  if (path !== '/') out.push('/');
  return out;
}

/** Whether `policy` may let a program run by its bare name (a rule naming it, or `*`): where the secure PATH finds it. */
export function mayRunByName(policy: Policy, name: string): boolean {
  const compiled = compile(policy);
  return (['execute_binary', 'execute_code'] as const).some((op) =>
    (compiled.byOperation.get(op) ?? []).some((r) => r.rule.effect !== 'deny' && (r.anyProgram || r.names.includes(name))),
  );
}

/**
 * True when every execute_binary rule allows programs by bare name (or `*`): then where a bare-named
 * program lives cannot change a decision, only whether it exists, which the host itself reports (127).
 * Any deny or ask rule, or a rule naming a path, needs the real location (an alias of a denied program).
 */
export function programsMatchByName(policy: Policy): boolean {
  return policy.rules.every(
    (r) =>
      (r.operation !== 'execute_binary' && r.operation !== 'execute_code') ||
      (r.effect === 'allow' && r.resources !== null && r.resources.every((x) => !x.includes('/'))),
  );
}

/**
 * The OS sandbox for a command under this policy. Visible trees: for each allow rule's path glob, its
 * literal prefix in whole segments (/var/log/** → /var/log, /srv/*.txt → /srv; a literal path is itself),
 * nested roots folded into their parent. Deny and ask rules that name a literal path or a whole tree
 * (`/etc/shadow`, `/root/.ssh/**`) are enforced by the mounts too: hidden (reads) or read-only (writes);
 * so are reads of one directory's matching names (`/var/log/secure*`, hidden as they match). Others (any
 * `.ssh` below `/`, writes to `/srv/*.conf`) are enforced by the static check alone.
 */
export function sandboxSpec(policy: Policy, owner: string): SandboxSpec {
  const read: string[] = [];
  const write: string[] = [];
  const hide: string[] = [];
  const hideMatching: string[] = [];
  const readOnly: string[] = [];
  let network = false;
  for (const rule of policy.rules) {
    if (rule.operation === 'network') {
      if (rule.effect === 'allow') network = true;
      continue;
    }
    if (!rule.resources) continue;
    const globs = rule.resources.filter((r) => r.startsWith('/'));
    if (rule.effect !== 'allow') {
      const trees = globs.flatMap((g) => wholeTree(g) ?? []);
      if (rule.operation === 'write_file') readOnly.push(...trees);
      else if (rule.operation === 'read_file' || rule.operation === 'list_directory') {
        hide.push(...trees);
        hideMatching.push(...globs.filter((g) => wholeTree(g) === null && namesInOneDirectory(g)));
      }
      continue;
    }
    const prefixes = globs.map(globPrefix);
    if (rule.operation === 'write_file') write.push(...prefixes);
    else if (rule.operation === 'read_file' || rule.operation === 'list_directory' || rule.operation === 'execute_binary' || rule.operation === 'execute_code') {
      read.push(...prefixes);
    }
  }
  // A network deny anywhere wins over its allows, like every other check.
  if (policy.rules.some((r) => r.operation === 'network' && r.effect === 'deny')) network = false;
  return { read: roots(read), write: roots(write), hide: roots(hide), hideMatching: [...new Set(hideMatching)], readOnly: roots(readOnly), network, owner };
}

/** `/var/log/secure*`: wildcards in the last segment only (not `**`), so its matches are one directory's entries. */
function namesInOneDirectory(glob: string): boolean {
  const last = glob.slice(glob.lastIndexOf('/') + 1);
  return globPrefix(glob) === posix.dirname(glob) && last !== '**';
}

/** `/a/b` or `/a/b/**` → `/a/b`: a glob that covers exactly one literal path and everything below it. */
function wholeTree(glob: string): string | null {
  const base = glob.endsWith('/**') ? glob.slice(0, -3) || '/' : glob;
  return globPrefix(base) === base ? base : null;
}

function roots(paths: string[]): string[] {
  const sorted = [...new Set(paths)].sort();
  return sorted.filter((p) => !sorted.some((q) => q !== p && (q === '/' || p.startsWith(`${q}/`))));
}

const LAYERS: Record<StageBound['layer'], string> = {
  'static+sandbox': 'static checks, then the OS sandbox',
  static: 'static checks only',
  sandbox: 'the OS sandbox alone',
  none: 'nothing (execute_code with unsandboxed: true)',
};

/**
 * The lines `remux policy check` prints: the verdict, every check stage by stage, what bounds each stage.
 * Characters that would make a path or program look like another are named (showInvisible).
 */
export function explain(decision: Decision, cwdProblem: string | null = null): string[] {
  const lines = [`${decision.effect.toUpperCase()} under policy ${decision.policy}: ${decision.reason}`];
  for (const c of decision.checks) {
    const where = c.stage < 0 ? 'output ' : `stage ${c.stage + 1}`;
    lines.push(`  ${where}  ${c.effect.padEnd(5)}  ${c.reason}`);
  }
  // What client run would meet before anything runs (its exit 125): said here, though the policy allows.
  lines.push(`  working directory: ${decision.cwd}${cwdProblem ? ` (${cwdProblem}: client run would run nothing, exit 125)` : ''}`);
  for (const b of decision.bounds) {
    const why = b.code ? `: ${b.code}` : b.outside ? ` (rule ${b.outside.policy}#${b.outside.index} at ${posix.basename(b.outside.source.file)}:${b.outside.source.line} runs it outside the sandbox: sandbox: false)` : '';
    lines.push(`  stage ${b.stage + 1}  bounded by ${LAYERS[b.layer]}${why}`);
  }
  const outside = decision.bounds.filter((b) => b.outside).map((b) => b.stage + 1);
  if (decision.sandbox && everyStageLetOut(decision)) lines.push('  runs outside the OS sandbox (sandbox: false)');
  else if (decision.sandbox && outside.length > 0) lines.push(`  runs inside the OS sandbox, but for stage${outside.length > 1 ? 's' : ''} ${outside.join(', ')} (sandbox: false)`);
  else if (decision.sandbox) lines.push('  runs inside the OS sandbox');
  return lines.map(showInvisible);
}

/** Whether rules with sandbox: false let every stage that runs out of the sandbox (then none runs in it). */
export function everyStageLetOut(decision: Decision): boolean {
  return decision.bounds.length > 0 && decision.bounds.every((b) => b.outside !== undefined);
}

/** Several decisions as one: any deny denies, else any ask asks; every check is kept. */
export function combine(policy: Policy, decisions: Decision[], base: Decision): Decision {
  const checks = decisions.flatMap((d) => d.checks);
  const decisive = checks.find((c) => c.effect === 'deny') ?? checks.find((c) => c.effect === 'ask');
  return {
    ...base,
    effect: decisive?.effect ?? 'allow',
    rule: decisive?.rule ?? null,
    reason: decisive?.reason ?? `allowed: all ${checks.length} checks pass under policy ${policy.name}`,
    checks,
  };
}
