// Static analysis of one pipeline stage's argv: which programs it runs and which paths it reads, writes and
// lists, found from argv alone (no shell, no filesystem). This is the first layer of enforcement; what it
// cannot see (a program's own config files, symlinks inside a listed tree, paths an unknown program derives
// from bare words) is left to the OS sandbox, the second layer. What cannot be checked at all is refused.
//
// Two verdicts besides the paths. `refusal`: the command cannot be bounded by any check (it runs programs
// or code remux cannot see, or takes a command line from elsewhere) and is denied even in the sandbox.
// `sandboxOnly`: the program reaches paths that are not on its command line and that no check before the
// run can see (symlinks it follows while recursing, files it opens under names it derives, through any
// symlink planted with that name), which the OS sandbox confines: the command is allowed only inside it.
// The tables name such options (ToolSpec.sandboxOnly); like a refusal, the first reason is kept and it
// passes up from wrapped commands and find -exec. Following a symlink named on the command line is
// neither: the policy resolves those paths.
//
// Conventions the policy engine relies on:
// - Paths are returned as written; relative ones are relative to the command's working directory, except
//   where a tool changes directory itself (`tar -C`, `git -C`): those are joined onto the directory.
// - A directory a program reads or changes recursively (find -exec, grep -r, rg, cp -r, tar -c, rsync -r,
//   rm -r, chmod -R, du, ls -R) is reported in `lists` as well as in `reads`/`writes`: it stands for its
//   whole subtree, so a deny rule anywhere below it must deny.
// - `-` (stdin/stdout) and empty strings are never paths.
// - Programs not in the table (tools.ts): every argument that looks like a path (see pathCandidates) is a
//   read. Bare words (`secret.txt`) are not taken for paths; the sandbox confines what they can reach.

import { posix } from 'node:path';
import { compileGlob, GlobError } from '../policy/glob.js';
import type { ActsAs, ArgvAnalysis, CodeRun } from './types.js';
import {
  GIT_GLOBAL,
  GIT_OTHER,
  GIT_READS,
  GIT_SUBS,
  GIT_WRITES,
  IFPATH,
  L,
  R,
  SYSTEMD_UNITS_ACTING_AS,
  W,
  looksLikePath,
  lookupTool,
  parseOptions,
  resolveLong,
  type Kind,
  type Meaning,
  type Parsed,
  type ToolSpec,
} from './tools.js';

/** Wrappers inside wrappers; past this the command is refused rather than recursed into. */
const MAX_DEPTH = 16;

class Acc {
  readonly binaries: string[] = [];
  readonly reads: string[] = [];
  readonly writes: string[] = [];
  readonly lists: string[] = [];
  readonly nested: string[] = [];
  readonly code: CodeRun[] = [];
  readonly actsAs: ActsAs[] = [];
  refusal: string | null = null;
  sandboxOnly: string | null = null;

  add(role: number, path: string | undefined): void {
    if (path === undefined || path === '' || path === '-') return;
    if (role & IFPATH) {
      for (const p of pathCandidates(path)) this.add(role & ~IFPATH, p);
      return;
    }
    if (role & R) this.reads.push(path);
    if (role & W) this.writes.push(path);
    if (role & L) this.lists.push(path);
  }

  /** The first reason is kept: it names the construct that made the command uncheckable. */
  refuse(reason: string): void {
    this.refusal ??= reason;
  }

  /** The first reason is kept, as for refusals. */
  needsSandbox(reason: string): void {
    this.sandboxOnly ??= reason;
  }

  /** `program` (as written) runs code remux cannot read: `does` completes "<name> …". */
  runsCode(program: string, does: string): void {
    this.code.push({ program, does });
  }

  result(): ArgvAnalysis {
    return {
      binaries: this.binaries,
      reads: unique(this.reads),
      writes: unique(this.writes),
      lists: unique(this.lists),
      nested: this.nested,
      refusal: this.refusal,
      sandboxOnly: this.sandboxOnly,
      code: this.code,
      actsAs: this.actsAs,
    };
  }
}

const unique = (a: string[]): string[] => (a.length < 2 ? a : [...new Set(a)]);

interface Ctx {
  /** The name whose table entry describes a program as written in argv (see analyzeArgv). */
  toolName: (program: string) => string;
  depth: number;
  /** xargs will append arguments read at run time, which cannot be checked. */
  appended: boolean;
  /** Inside find -exec, where `{}` stands for each file found. */
  found: boolean;
}

interface Call {
  acc: Acc;
  spec: ToolSpec;
  argv: readonly string[];
  /** Index of the first argument after the program. */
  i: number;
  ctx: Ctx;
  /** The program's name in the tool table: its basename, or that of the file it runs (Ctx.toolName). */
  name: string;
}

const basename = (program: string): string => program.slice(program.lastIndexOf('/') + 1);

/**
 * Analyses one stage's argv, synchronously, from argv alone but for `toolName`, which names the table entry of a program as
 * written (default: its basename); the policy engine passes the name of the file it really runs where
 * that differs (a link named `foo` to bash is analysed as bash).
 */
export function analyzeArgv(argv: string[], toolName: (program: string) => string = basename): ArgvAnalysis {
  const acc = new Acc();
  if (argv.length === 0) acc.refuse('empty command');
  else if (argv.some((a) => a.includes('\0'))) acc.refuse('an argument contains a NUL byte');
  else run(acc, argv, 0, { toolName, depth: 0, appended: false, found: false });
  return acc.result();
}

function run(acc: Acc, argv: readonly string[], i: number, ctx: Ctx): void {
  if (i >= argv.length) {
    if (ctx.appended) acc.refuse('xargs would supply the command to run, which cannot be checked');
    return;
  }
  if (ctx.depth > MAX_DEPTH) {
    acc.refuse(`more than ${MAX_DEPTH} nested wrapper commands`);
    return;
  }
  const prog = argv[i] as string;
  acc.binaries.push(prog);
  const name = ctx.toolName(prog);
  const spec = lookupTool(name);
  if (spec === undefined) {
    if (ctx.appended) acc.refuse(`xargs would pass unchecked arguments to ${name}`);
    readsPathLike(acc, argv, i + 1);
    return;
  }
  if (ctx.appended && !spec.pathFree && !WRAPPERS.has(spec.kind)) {
    acc.refuse(`xargs would pass unchecked arguments to ${name}, which takes paths`);
    return;
  }
  HANDLERS[spec.kind]({ acc, spec, argv, i: i + 1, ctx, name });
}

/** What an argument list of a program the table does not describe reads: each argument's path candidates. */
function readsPathLike(acc: Acc, argv: readonly string[], from: number): void {
  for (let j = from; j < argv.length; j++) for (const p of pathCandidates(argv[j] as string)) acc.reads.push(p);
}

const deeper = (ctx: Ctx): Ctx => ({ ...ctx, depth: ctx.depth + 1 });

/** A wrapper's command, after its options and `skip` operands: analysed, or what the wrapper does without one refused. */
function wrapped(c: Call, p: Parsed, skip: number): void {
  if (has(p, c.spec.literal)) return;
  const at = p.end + skip;
  if (at >= c.argv.length && c.spec.alone !== null) c.acc.refuse(`${c.name} ${c.spec.alone}`);
  else run(c.acc, c.argv, at, deeper(c.ctx));
}

/** Kinds that pass the rest of argv to another program, which is checked for itself under xargs. */
const WRAPPERS = new Set<Kind>(['wrap', 'setarch', 'env', 'sudo', 'xargs', 'flock', 'shell', 'busybox']);

/** Interpreter options that give the code inline (or a module to run): no script follows. */
const INTERP_CODE_OPTIONS = new Set(['-c', '-m', '-e', '-E', '-p', '--eval', '--print']);
/** Interpreter options whose value is the next word (a warning filter, a directory, a module to load first). */
const INTERP_VALUE_OPTIONS = new Set(['-W', '-X', '-I', '-M', '-r', '--require', '--import', '--loader']);

const URL_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
const ASSIGN_RE = /^[A-Za-z_][A-Za-z0-9_]*=/;
const FILE_URL = /^file:(?:\/\/[^/]*)?(\/[^?#]*)/i;

/**
 * Paths in an argument of a program remux does not know: the argument itself if it looks like a path
 * (`.`, `..`, or contains `/`); the value of `--opt=VALUE` and `NAME=VALUE`; for `-xVALUE` both VALUE and
 * the text from the first path-looking position (`-vo/etc/x` → `o/etc/x`, `/etc/x`); the path of a file://
 * URL. Other URLs are not paths.
 */
function pathCandidates(a: string): string[] {
  if (a.startsWith('--')) {
    const eq = a.indexOf('=');
    return eq < 0 ? [] : pathCandidates(a.slice(eq + 1));
  }
  if (a.startsWith('-')) {
    const slash = a.indexOf('/');
    if (slash < 0) return [];
    let from = slash;
    while (from > 1 && a.charAt(from - 1) === '.') from--;
    const attached = a.slice(2);
    return from <= 2 || !looksLikePath(attached) ? [a.slice(from)] : [attached, a.slice(from)];
  }
  if (URL_RE.test(a)) {
    const p = fileUrlPath(a);
    return p === null ? [] : [p];
  }
  if (ASSIGN_RE.test(a)) return pathCandidates(a.slice(a.indexOf('=') + 1));
  return looksLikePath(a) ? [a] : [];
}

/** The path a file: URL names, decoded as curl decodes it; null for other URLs. */
function fileUrlPath(url: string): string | null {
  const m = FILE_URL.exec(url);
  if (m === null) return null;
  try {
    return decodeURIComponent(m[1] as string);
  } catch {
    return m[1] as string;
  }
}

function joinPath(dir: string, p: string): string {
  if (dir === '.' || p.startsWith('/')) return p;
  return dir.endsWith('/') ? dir + p : `${dir}/${p}`;
}

/** Applies the table's meanings of the options seen, and reads the unknown options' path-like values. */
function applyOpts(c: Call, p: Parsed, base = '.', unknownRole = R): void {
  for (const o of p.opts) {
    if (!o.known && c.spec.unknownOptions !== null) c.acc.refuse(`${c.name} ${o.name}: ${c.spec.unknownOptions}`);
    applyMeaning(c, c.spec.values.get(o.name), o.value, base);
    const subopts = c.spec.subopts.get(o.name);
    // getsubopt's NAME=VALUE,NAME=VALUE: a VALUE ends at the next comma.
    if (subopts !== undefined && o.value !== undefined) {
      for (const sub of o.value.split(',')) {
        const eq = sub.indexOf('=');
        if (eq > 0) applyMeaning(c, subopts.get(sub.slice(0, eq)), sub.slice(eq + 1), base);
      }
    }
  }
  for (const v of p.unknown) c.acc.add(unknownRole, joinPath(base, v));
  sandboxOptions(c, p);
}

/** A refusal, or the roles of a value (relative to `base` unless it is only a path when it looks like one). */
function applyMeaning(c: Call, m: Meaning | undefined, value: string | undefined, base: string): void {
  if (typeof m === 'string') c.acc.refuse(m);
  else if (m !== undefined && value !== undefined) c.acc.add(m, m & IFPATH ? value : joinPath(base, value));
}

/** Applies the table's options and behaviours that reach paths off the command line (ToolSpec.sandboxOnly). */
function sandboxOptions(c: Call, p: Parsed): void {
  const { acc, spec } = c;
  if (has(p, spec.sandboxSafe)) return;
  if (spec.sandboxOnlyAlways !== null) acc.needsSandbox(`${c.name} ${spec.sandboxOnlyAlways}`);
  if (spec.sandboxOnlyIfRecursive && !has(p, spec.recurse)) return;
  for (const o of p.opts) {
    const does = spec.sandboxOnly.get(o.name);
    if (does !== undefined) acc.needsSandbox(`${c.name} ${o.name} ${does}`);
  }
}

function has(p: Parsed, names: ReadonlySet<string> | readonly string[]): boolean {
  return 'has' in names ? p.opts.some((o) => names.has(o.name)) : p.opts.some((o) => names.includes(o.name));
}

const valuesOf = (p: Parsed, ...names: string[]): string[] =>
  p.opts.filter((o) => o.value !== undefined && names.includes(o.name)).map((o) => o.value as string);

/** Parses a tool's options and applies their meanings; returns the parse for the handler's operands. */
function parsed(c: Call): Parsed {
  const p = parseOptions(c.spec, c.argv, c.i);
  applyOpts(c, p);
  return p;
}

/** The program as written in argv (a name or a path), for the policy to resolve like execute_binary's. */
const program = (c: Call): string => c.argv[c.i - 1] as string;

function operandRole(c: Call, p: Parsed, role = c.spec.operands): number {
  return has(p, c.spec.recurse) ? role | L : role;
}

// ---------------------------------------------------------------------------------------------------------
// Handlers

/** What a multi-call program does by its verb (`systemctl reboot`) or by the units that verb starts (`systemctl start reboot.target`). */
function actingAs(c: Call, p: Parsed): void {
  const [verb, ...units] = p.operands;
  if (verb === undefined) return;
  const names = [c.spec.actsAs.get(verb) ?? [], c.spec.startsUnits.has(verb) ? units.flatMap(unitActsAs) : []].flat();
  for (const name of new Set(names)) c.acc.actsAs.push({ program: program(c), name });
}

/**
 * The programs a systemd unit operand acts as: systemctl gives a name without a type one (.service, or
 * .target for isolate); a glob pattern counts for every unit it matches.
 */
function unitActsAs(unit: string): string[] {
  const matches = (name: string): boolean => {
    try {
      return compileGlob(`/${unit}`).test(`/${name}`);
    } catch (err) {
      // A pattern beyond our glob grammar: whatever systemctl makes of it, it may be any of them.
      if (err instanceof GlobError) return true;
      throw err;
    }
  };
  return [...SYSTEMD_UNITS_ACTING_AS].filter(([name]) => name.replace(/\.(service|target)$/, '') === unit || matches(name)).map(([, acts]) => acts);
}

const HANDLERS: Record<Kind, (c: Call) => void> = {
  plain(c) {
    const p = parsed(c);
    actingAs(c, p);
    if (c.spec.operands === 0 || has(p, c.spec.literal)) return;
    const verb = p.operands[0] === undefined ? undefined : c.spec.verbs.get(p.operands[0]);
    if (verb !== undefined) c.acc.refuse(verb);
    const role = operandRole(c, p);
    const sized = c.spec.sizeOperand && p.opts.every((o) => o.known);
    for (const o of sized ? p.operands.filter((_, k) => k !== 1) : p.operands) c.acc.add(role, o);
    if (p.operands.length === 0 && c.spec.dflt !== null) c.acc.add(role, c.spec.dflt);
  },

  none() {},

  refuse(c) {
    c.acc.refuse(`${c.name}: ${c.spec.reason}`);
  },

  interp(c) {
    if (c.argv.length - c.i === 1 && c.argv[c.i] === '--version') return;
    // Options differ per language; every path-looking argument (the script first) is read, and so is
    // the first plain word that is not an option's value: the script, even as a bare name (`python3 x.py`).
    let script: string | undefined;
    // After code given inline (-c, -e, -m …) the words are its arguments, not a script.
    let operand = true;
    for (let j = c.i; j < c.argv.length; j++) {
      const arg = c.argv[j] as string;
      if (INTERP_CODE_OPTIONS.has(arg)) operand = false;
      if (operand && !arg.startsWith('-') && (j === c.i || !INTERP_VALUE_OPTIONS.has(c.argv[j - 1] as string))) {
        operand = false;
        if (pathCandidates(arg).length === 0) {
          script ??= arg;
          c.acc.add(R, arg);
        }
      }
      for (const p of pathCandidates(arg)) {
        script ??= p;
        c.acc.add(R, p);
      }
    }
    const what = script === undefined ? 'code from its command line or input' : script;
    c.acc.runsCode(program(c), `would run ${what}: ${c.spec.reason}`);
  },

  build(c) {
    const p = parsed(c);
    for (const o of p.operands) c.acc.add(R | IFPATH, o);
    // The project (Makefile, package.json, Cargo.toml, go.mod) is read from the working directory unless
    // an option names another one.
    const elsewhere = p.opts.some((o) => {
      const m = c.spec.values.get(o.name);
      return typeof m === 'number' && (m & L) !== 0;
    });
    if (!elsewhere && c.spec.dflt !== null) c.acc.add(R | L, c.spec.dflt);
    c.acc.runsCode(program(c), c.spec.reason);
  },

  wrap(c) {
    wrapped(c, parsed(c), c.spec.skip);
  },

  setarch(c) {
    // `setarch ARCH [options] [command]`: ARCH is the first word unless it is an option; the links
    // named after an architecture (linux64, x86_64) take none.
    const first = c.argv[c.i];
    const start = c.name === 'setarch' && first !== undefined && !first.startsWith('-') ? c.i + 1 : c.i;
    const p = parseOptions(c.spec, c.argv, start);
    applyOpts(c, p);
    wrapped(c, p, 0);
  },

  env(c) {
    const p = parsed(c);
    let j = p.end;
    if (c.argv[j] === '-') j++; // `env -` is `env -i`
    run(c.acc, c.argv, assignments(c.acc, c.argv, j), deeper(c.ctx));
  },

  sudo(c) {
    const p = parsed(c);
    run(c.acc, c.argv, assignments(c.acc, c.argv, p.end), deeper(c.ctx));
  },

  xargs(c) {
    const p = parsed(c);
    if (p.end >= c.argv.length) {
      if (c.ctx.appended) c.acc.refuse('xargs would take its command from its input');
      else c.acc.binaries.push('echo'); // xargs's default command
      return;
    }
    const nested = c.acc.nested.length;
    run(c.acc, c.argv, p.end, { ...c.ctx, depth: c.ctx.depth + 1, appended: true });
    // -I R puts each input item wherever R appears, including inside a shell's command string.
    const replace = p.opts.reduce<string | undefined>(
      (r, o) => (o.name === '-I' ? o.value : o.name === '-i' || o.name === '--replace' ? (o.value ?? '{}') : r),
      undefined,
    );
    if (replace !== undefined && replace !== '' && c.acc.nested.slice(nested).some((n) => n.includes(replace))) {
      c.acc.refuse('xargs -I would put its input into a shell command string');
    }
  },

  flock(c) {
    const p = parsed(c);
    const j = p.end;
    if (j + 1 >= c.argv.length) {
      // `flock FD` locks an inherited descriptor and runs nothing, unless xargs appends a command.
      if (c.ctx.appended) c.acc.refuse('xargs would supply the command to run, which cannot be checked');
      return;
    }
    c.acc.add(W, c.argv[j]); // the lock file is created if missing
    const next = c.argv[j + 1];
    if (next === '-c' || next === '--command') {
      if (j + 2 < c.argv.length) c.acc.nested.push(c.argv[j + 2] as string);
    } else run(c.acc, c.argv, j + 1, deeper(c.ctx));
  },

  shell(c) {
    const { acc, argv, name } = c;
    let dashC = false;
    let dashS = false;
    let j = c.i;
    for (; j < argv.length; j++) {
      const a = argv[j] as string;
      if (a === '--' || a === '-') {
        j++;
        break;
      }
      if (a.length < 2 || (a[0] !== '-' && a[0] !== '+')) break;
      if (a.startsWith('--')) {
        if (a === '--rcfile' || a === '--init-file') j++; // only read by interactive shells, refused below
        continue;
      }
      for (const ch of a.slice(1)) {
        if (ch === 'c') dashC = true;
        else if (ch === 's') dashS = true;
        else if (ch === 'i') acc.refuse(`${name} -i runs an interactive shell`);
        else if (ch === 'o' || ch === 'O') j++; // -o OPTION: the option name is the next argument
      }
    }
    if (!dashC) {
      if (c.ctx.appended) acc.refuse(`xargs would pass unchecked arguments to ${name}, which takes a script`);
      if (acc.refusal !== null) return;
      // With -s the operands are positional parameters and the commands come from the input.
      const script = dashS ? undefined : argv[j];
      if (script !== undefined) acc.add(R, script);
      acc.runsCode(
        program(c),
        script !== undefined
          ? `would run the script ${script}, whose contents cannot be checked`
          : 'without -c reads commands from its input, which cannot be checked',
      );
      return;
    }
    // Arguments after the string become $0, $1…: data, not commands.
    if (j < argv.length) acc.nested.push(argv[j] as string);
    else if (c.ctx.appended) acc.refuse(`xargs would supply the command string of ${name} -c`);
  },

  eval(c) {
    if (c.i < c.argv.length) c.acc.nested.push(c.argv.slice(c.i).join(' '));
  },

  builtin(c) {
    const { acc, argv, name } = c;
    const args = argv.slice(c.i);
    // bash's printf -v NAME and test -v NAME evaluate an array subscript in NAME, `a[$(cmd)]` included
    // (zsh's printf -v too). printf takes options only before its format.
    const end = args.findIndex((a) => !a.startsWith('-') || a === '--');
    const options = name === 'printf' ? args.slice(0, end < 0 ? args.length : end) : args;
    if (options.some((a) => (name === 'printf' ? a.startsWith('-v') : a === '-v'))) {
      acc.refuse(`${name} -v names a shell variable, and a shell's builtin ${name} (what runs on SSH hosts) runs the command substitutions in its subscript`);
    }
    for (const a of args) acc.add(c.spec.operands, a);
  },

  busybox(c) {
    const a = c.argv[c.i];
    if (a === '--install') c.acc.refuse(`${c.name} --install creates links in system directories`);
    else if (a === undefined || !a.startsWith('-')) run(c.acc, c.argv, c.i, deeper(c.ctx));
  },

  find,

  pattern(c) {
    const p = parsed(c);
    const noPattern = has(p, ['-e', '--regexp', '-f', '--file', '--files', '--type-list']);
    const paths = noPattern ? p.operands : p.operands.slice(1);
    const recursive =
      c.spec.dflt !== null ||
      has(p, c.spec.recurse) ||
      valuesOf(p, '-d', '--directories').some((v) => v.startsWith('rec'));
    const role = recursive ? c.spec.operands | L : c.spec.operands;
    for (const o of paths) c.acc.add(role, o);
    if (paths.length === 0 && recursive) c.acc.add(role, '.');
    // zgrep gives each file to grep on its input, so a recursive grep searches the working directory.
    if (recursive && c.name.startsWith('z')) c.acc.add(R | L, '.');
  },

  dest(c) {
    const p = parsed(c);
    const { acc } = c;
    const role = operandRole(c, p);
    if (has(p, c.spec.literal)) {
      for (const o of p.operands) acc.add(W, o); // install -d DIR…
      return;
    }
    const targets = valuesOf(p, '-t', '--target-directory');
    if (targets.length > 0) {
      for (const t of targets) acc.add(W, t);
      for (const o of p.operands) acc.add(role, o);
      writesInto(c, p, targets, p.operands);
      return;
    }
    const ops = p.operands;
    for (let k = 0; k < ops.length - 1; k++) acc.add(role, ops[k]);
    if (ops.length === 1) {
      acc.add(role, ops[0]);
      if (c.name === 'ln') acc.add(W, '.'); // `ln -s TARGET` creates ./basename
    } else {
      const dest = ops[ops.length - 1] as string;
      acc.add(W, dest);
      if (!has(p, ['-T', '--no-target-directory'])) writesInto(c, p, [dest], ops.slice(0, -1));
    }
  },

  inout(c) {
    const p = parsed(c);
    c.acc.add(R, p.operands[0]);
    c.acc.add(W, p.operands[1]);
  },

  cmp(c) {
    const p = parsed(c);
    c.acc.add(R, p.operands[0]); // later operands are byte offsets
    c.acc.add(R, p.operands[1]);
  },

  mode(c) {
    // `chmod -w FILE`: an argument like -w, -rwx, -x+s is the mode, not options.
    const rest: string[] = [];
    let mode = false;
    let ended = false;
    for (let j = c.i; j < c.argv.length; j++) {
      const a = c.argv[j] as string;
      if (!ended && MODE_OPT.test(a)) mode = true;
      else rest.push(a);
      if (a === '--') ended = true;
    }
    const p = parseOptions(c.spec, rest, 0);
    applyOpts(c, p);
    const files = mode || has(p, ['--reference']) ? p.operands : p.operands.slice(1);
    for (const f of files) c.acc.add(operandRole(c, p, W), f);
  },

  owner(c) {
    const p = parsed(c);
    const files = has(p, ['--reference']) ? p.operands : p.operands.slice(1);
    for (const f of files) c.acc.add(operandRole(c, p, W), f);
  },

  compress(c) {
    const p = parsed(c);
    const role = operandRole(c, p, has(p, c.spec.literal) ? R : R | W);
    for (const o of p.operands) c.acc.add(role, o);
  },

  split(c) {
    const p = parsed(c);
    c.acc.add(R, p.operands[0] ?? '-');
    if (c.name === 'split') c.acc.add(W, p.operands[1] ?? 'x'); // output files PREFIXaa, PREFIXab…
    else if (!has(p, ['-f', '--prefix'])) c.acc.add(W, 'xx');
  },

  less(c) {
    const p = parsed(c);
    for (const o of p.operands) {
      if (o.startsWith('+')) c.acc.refuse(`${c.name} ${o}: a +command runs pager commands, which can start a shell`);
      else c.acc.add(R, o);
    }
  },

  dd(c) {
    for (let j = c.i; j < c.argv.length; j++) {
      const a = c.argv[j] as string;
      if (a.startsWith('if=')) c.acc.add(R, a.slice(3));
      else if (a.startsWith('of=')) c.acc.add(W, a.slice(3));
    }
  },

  xxd(c) {
    // xxd's own parser: -c8 or -c 8 or -cols 8; options end at the first operand.
    let j = c.i;
    for (; j < c.argv.length; j++) {
      let a = c.argv[j] as string;
      if (a === '--') {
        j++;
        break;
      }
      if (a.startsWith('--')) a = a.slice(1);
      if (a.length < 2 || a[0] !== '-') break;
      if (XXD_VALUES.has(a.charAt(1))) {
        const rest = a.charCodeAt(2);
        if (Number.isNaN(rest) || (rest >= 97 && rest <= 122) || (rest >= 65 && rest <= 90)) j++;
      }
    }
    c.acc.add(R, c.argv[j]);
    c.acc.add(W, c.argv[j + 1]);
  },

  sed(c) {
    const p = parsed(c);
    const scripts = valuesOf(p, '-e', '--expression');
    let files = p.operands;
    if (scripts.length === 0 && !has(p, ['-f', '--file'])) {
      if (files[0] === undefined) return;
      scripts.push(files[0]);
      files = files.slice(1);
    }
    // GNU sed joins -e scripts with newlines (an `a\` at the end of one continues into the next).
    const found = scanSed(scripts.join('\n'));
    if (typeof found === 'string') c.acc.refuse(`sed: ${found}`);
    else {
      for (const r of found.reads) c.acc.add(R, r);
      for (const w of found.writes) c.acc.add(W, w);
    }
    const inPlace = p.opts.filter((o) => o.name === '-i' || o.name === '--in-place');
    for (const f of files) c.acc.add(inPlace.length > 0 ? R | W : R, f);
    for (const { value: suffix } of inPlace) {
      if (suffix === undefined || suffix === '') continue;
      for (const f of files) c.acc.add(W, sedBackup(f, suffix));
      if (has(p, ['--follow-symlinks'])) c.acc.needsSandbox('sed --follow-symlinks keeps -i backups beside the targets of symlinks');
    }
  },

  awk(c) {
    const p = parsed(c);
    for (const w of valuesOf(p, '-W')) {
      if (!AWK_W_OK.has(w)) c.acc.refuse(`awk -W ${w} is not allowed (only ${[...AWK_W_OK].join(', ')})`);
    }
    const sources = valuesOf(p, '-e', '--source');
    let j = p.end;
    if (sources.length === 0 && !has(p, ['-f', '--file', '-E', '--exec'])) {
      if (j >= c.argv.length) return;
      sources.push(c.argv[j++] as string);
    }
    for (const s of sources) {
      const why = scanAwk(s);
      if (why !== null) c.acc.refuse(`awk: the program ${why}`);
    }
    for (; j < c.argv.length; j++) {
      const a = c.argv[j] as string;
      if (!ASSIGN_RE.test(a)) c.acc.add(R, a); // NAME=value operands are assignments
    }
  },

  tar,
  git,
  curl,

  wget(c) {
    const p = parsed(c);
    const toFile = has(p, ['-O', '--output-document']);
    const prefixed = has(p, ['-P', '--directory-prefix']);
    const fetches = p.operands.length > 0 || has(p, ['-i', '--input-file']);
    if (!fetches || toFile || has(p, ['--spider'])) return;
    if (!prefixed) c.acc.add(W, '.'); // saves into the cwd
    // It checks the name with stat, so a dangling symlink of that name is written through.
    c.acc.needsSandbox('wget saves files under names taken from the URL or the server, through symlinks of those names');
  },

  ssh(c) {
    const { acc, argv } = c;
    const before = parsed(c);
    sshOptions(acc, before);
    if (before.end >= argv.length) return;
    // OpenSSH parses options once more after the destination.
    const after = parseOptions(c.spec, argv, before.end + 1);
    applyOpts(c, after);
    sshOptions(acc, after);
    const noCommand = has(before, SSH_NO_COMMAND) || has(after, SSH_NO_COMMAND);
    if (after.end < argv.length) {
      // The remote command is one string run by the remote user's shell.
      if (!has(before, ['-s']) && !has(after, ['-s'])) acc.nested.push(argv.slice(after.end).join(' '));
    } else if (!noCommand) acc.refuse('ssh without a remote command runs a shell that reads commands from its input');
  },

  scp(c) {
    const p = parsed(c);
    sshOptions(c.acc, p);
    copyOperands(c, p, operandRole(c, p, R));
    const ops = p.operands;
    const dest = ops[ops.length - 1];
    if (ops.length > 1 && dest !== undefined && !isRemote(dest)) {
      // A remote source's file name is the text after its host.
      const sources = ops.slice(0, -1).map((o) => (isRemote(o) ? o.slice(o.lastIndexOf(':') + 1) : o));
      writesInto(c, p, [dest], sources);
    }
  },

  rsync(c) {
    const p = parsed(c);
    for (const f of valuesOf(p, '-f', '--filter')) {
      const m = RSYNC_MERGE.exec(f);
      if (m !== null) c.acc.add(R, m[1]);
    }
    let role = operandRole(c, p, R);
    if (has(p, ['--remove-source-files'])) role |= W;
    if (p.operands.length === 1) {
      if (!isRemote(p.operands[0] as string)) c.acc.add(R | L, p.operands[0]); // lists like ls
      return;
    }
    copyOperands(c, p, role);
    const dest = p.operands[p.operands.length - 1];
    if (dest === undefined || isRemote(dest)) return; // these directories are on the remote side
    // The receiver works in the destination directory: relative paths of these options start there.
    for (const o of p.opts) {
      const inDest = RSYNC_IN_DEST.get(o.name);
      if (inDest === undefined || o.value === undefined) continue;
      c.acc.add(inDest, joinPath(dest, o.value));
      // A relative --partial-dir is in each file's own directory, at a depth only the transfer knows.
      if (o.name === '--partial-dir' && !o.value.startsWith('/') && o.value.split('/').includes('..')) {
        c.acc.needsSandbox('rsync --partial-dir with .. is taken from the directory of each file');
      }
    }
  },

  // ip, zip and openssl read what their arguments name like programs the table does not describe; some
  // of their forms run commands or load code, which is refused.
  ip(c) {
    readsPathLike(c.acc, c.argv, c.i);
    const refusal = ipRefusal(program(c), c.argv.slice(c.i));
    if (refusal !== null) c.acc.refuse(refusal);
  },

  tc(c) {
    readsPathLike(c.acc, c.argv, c.i);
    const refusal = tcRefusal(c.argv.slice(c.i));
    if (refusal !== null) c.acc.refuse(refusal);
    for (const { file, does } of tcBpfCode(c.argv.slice(c.i))) {
      c.acc.add(R, file);
      c.acc.runsCode(program(c), `${does}, where it runs on network traffic: code remux cannot check`);
    }
  },

  zip(c) {
    readsPathLike(c.acc, c.argv, c.i);
    for (const a of c.argv.slice(c.i)) {
      // -TT is one of zip's two-letter options, anywhere in a cluster; long options may be abbreviated.
      const runs = a.startsWith('--') ? abbreviates(a.slice(2).split('=')[0] as string, 'unzip-command') : a.startsWith('-') && a.includes('TT');
      if (runs) c.acc.refuse('zip -TT/--unzip-command runs a command that cannot be checked');
    }
  },

  openssl(c) {
    readsPathLike(c.acc, c.argv, c.i);
    const args = c.argv.slice(c.i);
    if (args.length === 0) c.acc.refuse('openssl without a command reads commands from its input');
    if (args[0] === 'engine') c.acc.refuse('openssl engine loads engines, shared objects whose code cannot be checked');
    args.forEach((a, j) => {
      if (!a.startsWith('-')) return;
      // openssl takes -name and --name, and a value after `=` or as the next word.
      const bare = a.replace(/^--?/, '');
      const eq = bare.indexOf('=');
      const name = eq < 0 ? bare : bare.slice(0, eq);
      const value = eq < 0 ? args[j + 1] : bare.slice(eq + 1);
      if (name.includes('engine')) c.acc.refuse(`openssl -${name} loads an engine, a shared object whose code cannot be checked`);
      else if (name === 'provider-path') c.acc.refuse('openssl -provider-path makes -provider load modules from a directory, code that cannot be checked');
      else if (name === 'provider' && value !== undefined && value.includes('/')) c.acc.refuse('openssl -provider with a path loads that module, code that cannot be checked');
      // Like ssh -F and wget --config: the file can load engines and providers (shared objects).
      else if (name === 'config') c.acc.refuse('openssl -config reads a config file that can load engines and providers, code that cannot be checked');
    });
  },

  apt(c) {
    const p = parsed(c);
    for (const v of valuesOf(p, '-o', '--option')) {
      if (!aptOptionSafe(v)) c.acc.refuse(`${c.name} -o ${v}: only options that choose what and how to install are allowed (others can name commands or files apt runs, such as DPkg::Pre-Invoke or Dir::Bin)`);
    }
    const [verb, ...packages] = p.operands;
    if (verb === undefined || !APT_INSTALLS.has(verb)) return;
    for (const pkg of packages) {
      // apt takes a path (with a slash) as a package file or a directory of a source package.
      if (!pkg.includes('/')) continue;
      c.acc.add(R, pkg);
      c.acc.runsCode(program(c), `installs ${pkg}, whose maintainer scripts remux cannot check`);
    }
  },

  dpkg(c) {
    const p = parsed(c);
    // Operands are package files (read) or package names and patterns (-L nginx): only path-like ones are files.
    for (const o of p.operands) c.acc.add(has(p, ['-R', '--recursive']) ? R | L | IFPATH : R | IFPATH, o);
    if (has(p, ['-i', '--install', '--unpack'])) c.acc.runsCode(program(c), 'installs a package file, whose maintainer scripts remux cannot check');
    // -x/--extract DEB DIR and -b/--build DIR [DEB] write where their last operand says.
    if (has(p, ['-x', '--extract', '-X', '--vextract', '-b', '--build']) && p.operands.length > 0) c.acc.add(W, p.operands[p.operands.length - 1]);
  },

  ps(c) {
    if (psPrintsEnvironments(c.argv.slice(c.i))) c.acc.add(R, PROC_ENVIRON);
  },

  keygen(c) {
    // ssh-keygen's modes, as its main() picks them (the first that applies). Where the file is not on the
    // command line (known_hosts in ~/.ssh, a key file asked for on its input, host keys in /etc/ssh),
    // only the sandbox confines it.
    const p = parsed(c);
    const files = valuesOf(p, '-f');
    const file = (role: number, otherwise: string): void => {
      if (files.length > 0) for (const f of files) c.acc.add(role, f);
      else c.acc.needsSandbox(`ssh-keygen ${otherwise}`);
    };
    if (has(p, ['-R', '-H'])) {
      file(R | W, 'without -f edits ~/.ssh/known_hosts');
      for (const f of files) c.acc.add(W, `${f}.old`);
    } else if (has(p, ['-F'])) file(R, 'without -f reads ~/.ssh/known_hosts');
    else if (has(p, ['-A'])) c.acc.needsSandbox('ssh-keygen -A writes host keys under /etc/ssh (or below the -f prefix)');
    else if (has(p, ['-k'])) {
      file(has(p, ['-u']) ? R | W : W, '-k without -f asks for the file on its input');
      for (const o of p.operands) c.acc.add(R, o);
    } else if (has(p, ['-Y'])) {
      for (const f of files) c.acc.add(R, f); // the signing key, or the allowed signers
      const signs = valuesOf(p, '-Y').includes('sign');
      for (const o of p.operands) c.acc.add(R, o);
      if (signs) for (const o of p.operands) c.acc.add(W, `${o}.sig`);
    } else if (has(p, ['-s'])) {
      // Signs each public key operand into KEY-cert.pub beside it.
      for (const o of p.operands) {
        c.acc.add(R, o);
        c.acc.add(W, `${o.replace(/\.pub$/, '')}-cert.pub`);
      }
    } else if (has(p, ['-M', '-G', '-T'])) {
      for (const f of files) c.acc.add(R, f);
      for (const o of p.operands) c.acc.add(W, o); // moduli candidates or results
    } else if (has(p, ['-l', '-y', '-B', '-e', '-i', '-L', '-Q', '-K', '-D'])) file(R, 'without -f asks for the key file on its input');
    else if (has(p, ['-p', '-c'])) file(R | W, 'without -f asks for the key file on its input');
    else {
      // A new key pair: FILE and FILE.pub.
      file(W, 'without -f asks for the key file on its input');
      for (const f of files) c.acc.add(W, `${f}.pub`);
    }
  },

  chattr(c) {
    // e2fsprogs' own parser: until `--` or the first argument that starts with none of - + =, those are
    // modes and options. In a `-` word R (recurse), V and f are options, p and v take the next argument as
    // their value, and any other letter is an attribute to remove: `chattr -a FILE` is a mode.
    let recursive = false;
    let j = c.i;
    for (; j < c.argv.length; j++) {
      const a = c.argv[j] as string;
      if (a === '--') {
        j++;
        break;
      }
      if (a[0] === '+' || a[0] === '=') continue;
      if (a[0] !== '-') break;
      for (const letter of a.slice(1)) {
        if (letter === 'R') recursive = true;
        else if (letter === 'p' || letter === 'v') j++;
      }
    }
    for (; j < c.argv.length; j++) c.acc.add(recursive ? W | L : W, c.argv[j]);
  },

  setcap(c) {
    // libcap's own parser: -q, -v, -f, -h and -n ROOTID anywhere; any other argument (capabilities, `-`
    // to read them from the input, or -r to remove them) is followed by the file it applies to. After -v
    // it only compares them.
    let role = W;
    for (let j = c.i; j < c.argv.length; j++) {
      const a = c.argv[j] as string;
      if (a === '-n') j++;
      else if (a === '-v') role = R;
      else if (!SETCAP_FLAGS.has(a)) c.acc.add(role, c.argv[++j]);
    }
  },

  sysctl(c) {
    const p = parsed(c);
    if (has(p, ['-a', '-A', '-X', '--all'])) c.acc.add(R | L, '/proc/sys');
    const writes = has(p, ['-w', '--write']);
    for (const o of p.operands) {
      const eq = o.indexOf('=');
      // A key names a file under /proc/sys, or a directory whose settings are all read.
      const path = `/proc/sys/${sysctlPath(eq < 0 ? o : o.slice(0, eq))}`;
      c.acc.add(writes || eq >= 0 ? W : R | L, path);
    }
  },

  mount(c) {
    // Listing the mounts (`mount`, `mount -l -t ext4`) reads only the kernel's mount table.
    const p = parseOptions(c.spec, c.argv, c.i);
    if (p.operands.length > 0 || p.opts.some((o) => !MOUNT_LISTS.has(o.name))) c.acc.refuse(`${c.name}: ${c.spec.reason}`);
  },

  umount(c) {
    const p = parsed(c);
    const role = operandRole(c, p);
    for (const o of p.operands) {
      if (namesWhatIsMounted(o)) {
        c.acc.refuse(
          `umount ${o}: a device, LABEL= or UUID=, network share or filesystem name (tmpfs) is unmounted wherever it is mounted, which cannot be checked; name the mount point by its path instead (findmnt ${o} shows it; ./NAME for one in the working directory)`,
        );
      }
      c.acc.add(role, o);
    }
  },

  mkfs(c) {
    const passed = mkfsPasses(c.spec, program(c), c.argv.slice(c.i));
    if (passed !== null) run(c.acc, passed, 0, deeper(c.ctx));
  },

  wipefs(c) {
    // It erases only with -a or -o, and -n does all but the writes; otherwise it lists what it finds.
    const p = parsed(c);
    const erases = has(p, ['-a', '--all', '-o', '--offset']) && !has(p, ['-n', '--no-act']);
    for (const o of p.operands) c.acc.add(erases ? W : R, o);
  },

  losetup(c) {
    const p = parsed(c);
    if (has(p, ['-d', '--detach', '-c', '--set-capacity'])) {
      for (const o of p.operands) c.acc.add(W, o); // more loop devices to detach
    } else if (p.operands.length > 1 || (p.operands.length === 1 && has(p, ['-f', '--find']))) {
      c.acc.refuse(`${c.name}: ${c.spec.reason}`); // losetup [-f | LOOPDEV] FILE
    } else {
      for (const o of p.operands) c.acc.add(R, o); // shows a loop device
    }
  },
};

/**
 * Whether a umount operand may name what is mounted rather than where: umount looks a path up as a mount
 * point first, then as a source, so a device node, a tag (LABEL=…), a network share (host:/export,
 * //host/share) or a bare word compared with sources as written (tmpfs) unmounts wherever that is mounted.
 * Other paths are taken for mount points: one reaching /dev through a symlink, or an image file backing a
 * loop device, is checked only as itself.
 */
/** What `ps e` reads: every process's environment (a read of each /proc/PID/environ). */
export const PROC_ENVIRON = '/proc/*/environ';
/** BSD-style ps options that take a value: the rest of their word, else the next word. */
const PS_BSD_VALUE = new Set([...'OopqtUk']);
/** UNIX-style ps options that take no value: a word of only these (`-ef`) always parses as UNIX options. */
const PS_UNIX_FLAGS = new Set([...'AadeFfHjLlMmNTcwyZ']);
/** ps long options whose value may be the next word. */
const PS_LONG_VALUE = new Set(['--cols', '--columns', '--width', '--rows', '--lines', '--sort', '--format', '--group', '--Group', '--pid', '--ppid', '--quick-pid', '--sid', '--tty', '--user', '--User']);

/**
 * Whether procps ps may print processes' environments (BSD `e`: `ps e`, `ps auxe`). A word with a dash
 * is a UNIX option (`-e`: every process) unless ps fails to parse the words as such: then it parses them
 * all again as BSD options (`ps -auxe`, where `-u xe` names no user, is `ps auxe`). So every word is also
 * read as BSD options, and an `e` there counts unless each word is a UNIX option that cannot fail.
 */
export function psPrintsEnvironments(args: readonly string[]): boolean {
  let bsdE = false;
  let unixSure = true;
  let value = false;
  // The next word is -C's command list: read as BSD options only if another word fails as UNIX ones.
  let commands = false;
  for (const a of args) {
    if (value) {
      value = false;
      continue;
    }
    if (commands) {
      commands = false;
      if (a.includes('e')) bsdE = true;
      continue;
    }
    if (a.startsWith('--')) {
      value = !a.includes('=') && PS_LONG_VALUE.has(a);
      continue;
    }
    const letters = a.startsWith('-') ? a.slice(1) : a;
    for (let k = 0; k < letters.length; k++) {
      const ch = letters.charAt(k);
      if (ch === 'e') bsdE = true;
      if (PS_BSD_VALUE.has(ch)) {
        value = k === letters.length - 1;
        break;
      }
    }
    if (!a.startsWith('-') || !unixWordSure(letters)) unixSure = false;
    else if (letters.endsWith('C') && !value) commands = true;
  }
  return bsdE && !unixSure;
}

/**
 * A UNIX option word that parses whatever follows: flags, optionally ending in -o/-O FORMAT (the same
 * format parser either way) or -C CMDLIST (any names: `ps -C memcached` lists processes named so).
 */
function unixWordSure(letters: string): boolean {
  for (let k = 0; k < letters.length; k++) {
    const ch = letters.charAt(k);
    if (ch === 'o' || ch === 'O' || ch === 'C') return true;
    if (!PS_UNIX_FLAGS.has(ch)) return false;
  }
  return letters.length > 0;
}

function namesWhatIsMounted(operand: string): boolean {
  if (/^[A-Z]+=/.test(operand) || operand.startsWith('//') || !looksLikePath(operand)) return true;
  const colon = operand.indexOf(':');
  if (colon >= 0 && colon < operand.indexOf('/')) return true;
  return posix.normalize(operand).startsWith('/dev/');
}

/**
 * The command util-linux mkfs runs, mkfs.TYPE and its arguments (TYPE from -t, ext2 by default), or null
 * when it runs none (help, version, no device). It reads its own options (-t, -V, -h) with GNU getopt until
 * the first other option or the end, then runs argv from one before getopt's index, where it puts the
 * program's name. getopt moves the operands it skips after the options it reads, and only when it reads
 * the next option: so `mkfs -t ext4 /dev/sdb1 -L x` passes `-L x` alone. This follows glibc's getopt.
 */
export function mkfsPasses(spec: ToolSpec, written: string, args: readonly string[]): string[] | null {
  const argv = [written, ...args];
  if (args.length === 1 && args[0] === '-V') return null; // its version
  const isOperand = (a: string): boolean => !a.startsWith('-') || a.length === 1;
  let type = 'ext2';
  // getopt's optind, first_nonopt and last_nonopt; the rest of a cluster of letters being read.
  let optind = 1;
  let first = 1;
  let last = 1;
  let cluster = '';
  // Puts the operands skipped, argv[first, last), after the options read since, argv[last, optind).
  const exchange = (): void => {
    const skipped = argv.splice(first, last - first);
    argv.splice(optind - skipped.length, 0, ...skipped);
    first += optind - last;
    last = optind;
  };
  let foreign = false; // getopt's '?': an option that is not mkfs's own
  let verbose = 0; // twice: it only prints what it would run
  for (;;) {
    if (cluster === '') {
      if (first !== last && last !== optind) exchange();
      else if (last !== optind) first = optind;
      while (optind < argv.length && isOperand(argv[optind] as string)) optind++;
      last = optind;
      if (argv[optind] === '--') {
        optind++;
        if (first !== last && last !== optind) exchange();
        else if (first === last) first = optind;
        last = argv.length;
        optind = argv.length;
      }
      if (optind === argv.length) {
        if (first !== last) optind = first;
        break;
      }
      const a = argv[optind] as string;
      if (a.startsWith('--')) {
        optind++;
        const eq = a.indexOf('=');
        const name = resolveLong(spec, eq < 0 ? a.slice(2) : a.slice(2, eq));
        if (eq < 0 && (name === 'help' || name === 'version')) return null;
        if (eq < 0 && name === 'verbose') {
          verbose++;
          continue;
        }
        if (name === 'type' && eq >= 0) type = a.slice(eq + 1);
        else if (name === 'type' && optind < argv.length) type = argv[optind++] as string;
        else {
          foreign = true;
          break;
        }
        continue;
      }
      cluster = a.slice(1);
    }
    const letter = cluster.charAt(0);
    cluster = cluster.slice(1);
    if (cluster === '') optind++;
    if (letter === 'h') return null;
    if (letter === 'V') {
      verbose++;
      continue;
    }
    if (letter === 't' && cluster !== '') {
      type = cluster; // -tTYPE
      optind++;
      cluster = '';
    } else if (letter === 't' && optind < argv.length) type = argv[optind++] as string;
    else {
      foreign = true;
      break;
    }
  }
  // mkfs steps back to give that option to mkfs.TYPE.
  if (foreign) optind--;
  if (optind === argv.length || verbose > 1) return null; // no device (its usage), or a dry run
  return [`mkfs.${type}`, ...argv.slice(optind)];
}

/** apt's verbs that install what their operands name. */
const APT_INSTALLS = new Set(['install', 'reinstall', 'build-dep', 'satisfy']);

/**
 * apt -o options that only choose what and how to install (names are case-insensitive in apt): none of
 * them names a command or a file apt runs. Anything else is refused: Dpkg::Pre-Invoke, APT::Update::
 * Post-Invoke, Dir::Bin::dpkg, Acquire::http::Proxy-Auto-Detect… run programs.
 */
function aptOptionSafe(option: string): boolean {
  const eq = option.indexOf('=');
  const key = (eq < 0 ? option : option.slice(0, eq)).toLowerCase();
  const value = eq < 0 ? '' : option.slice(eq + 1);
  if (key === 'dpkg::options::') return /^--force-[a-z-]+$/.test(value);
  return /^(apt::get::[a-z-]+|apt::install-(recommends|suggests)|apt::color|apt::default-release|apt::architecture|apt::cache-limit|acquire::(retries|languages|forceipv4|forceipv6|check-valid-until|https?::(timeout|proxy|dl-limit))|debug::[a-z:-]+|quiet|dpkg::use-pty|dpkg::progress(-fancy)?)$/.test(key);
}

/** iproute2's matches(): `text` abbreviates `word` if it is a non-empty prefix of it. */
const abbreviates = (text: string, word: string): boolean => text !== '' && word.startsWith(text);

/** ip's global options that take the next word, by what ip.c matches them against (`-r` is -resolve, tried first). */
const IP_VALUE_OPTIONS = ['-loops', '-family', '-rcvbuf', '-netns'];

/**
 * Why ip would run a command that cannot be checked, or null: `ip netns exec NS CMD` and `ip vrf exec VRF
 * CMD` (with -all too), and -batch FILE, whose lines can be those. ip takes any prefix of an option, object
 * or command (`ip -b`, `ip net e`); prefixes of netns or vrf shared with another object (`ip n`, `ip ne`
 * are neighbour) are refused with exec too: neighbour has no such command. A link named ipOBJECT (ipnetns)
 * runs ip with that object.
 */
function ipRefusal(written: string, args: readonly string[]): string | null {
  let j = 0;
  for (; j < args.length; j++) {
    const a = args[j] as string;
    if (a === '--') {
      j++;
      break;
    }
    if (!a.startsWith('-')) break;
    const opt = a.startsWith('--') ? a.slice(1) : a;
    // A lone `-` abbreviates -loops, which ip tries first.
    if (opt !== '-' && abbreviates(opt, '-batch')) return `ip ${a} runs the commands in a file or its input, which can run commands (netns exec) that cannot be checked`;
    if (opt !== '-r' && IP_VALUE_OPTIONS.some((o) => abbreviates(opt, o))) j++;
  }
  const base = basename(written);
  const [object, command] = base.length > 2 ? [base.slice(2), args[j]] : [args[j], args[j + 1]];
  if (object === undefined || command === undefined) return null;
  if ((abbreviates(object, 'netns') || abbreviates(object, 'vrf')) && abbreviates(command, 'exec')) {
    return `ip ${object} ${command} runs a command in a network namespace or VRF, which cannot be checked`;
  }
  return null;
}

/** tc's global options in the order tc.c matches them (the first one a word abbreviates wins), and whether each takes the next word. */
const TC_OPTIONS: ReadonlyArray<[string, boolean]> = [
  ['-stats', false], ['-statistics', false], ['-details', false], ['-raw', false], ['-pretty', false], ['-graph', false], ['-Version', false],
  ['-iec', false], ['-help', false], ['-force', false], ['-batch', true], ['-netns', true], ['-Numeric', false], ['-names', false], ['-nm', false],
  ['-cf', true], ['-conf', true],
];

/**
 * Why tc would run a command that cannot be checked, or null: `tc exec` (its bpf `run` runs one) and
 * -batch FILE, whose lines can be that. Like ip, tc takes any prefix of an option or object (`tc -b`,
 * `tc e`); it has no `--`.
 */
function tcRefusal(args: readonly string[]): string | null {
  let j = 0;
  for (; j < args.length; j++) {
    const a = args[j] as string;
    if (!a.startsWith('-')) break;
    const opt = TC_OPTIONS.find(([o]) => abbreviates(a, o));
    if (opt?.[0] === '-batch') return `tc ${a} runs the commands in a file or its input, which can run commands (tc exec) that cannot be checked`;
    if (opt?.[1] === true) j++;
  }
  const object = args[j];
  if (object !== undefined && abbreviates(object, 'exec')) return `tc ${object} runs a command, which cannot be checked`;
  return null;
}

/**
 * How tc's bpf_do_parse() tells where BPF code comes from (the first match wins): each source by the
 * words it takes (a prefix, or an exact short name), whether a file follows, and what loading it does.
 */
const TC_BPF_SOURCES: ReadonlyArray<{ prefixOf: string[]; exact?: string; file: boolean; does: (file: string) => string }> = [
  { prefixOf: ['bytecode'], exact: 'bc', file: false, does: () => 'loads classic BPF code given on its command line into the kernel' },
  { prefixOf: ['bytecode-file'], exact: 'bcf', file: true, does: (f) => `loads classic BPF code from ${f} into the kernel` },
  { prefixOf: ['object-file'], exact: 'obj', file: true, does: (f) => `loads eBPF code from ${f} into the kernel` },
  { prefixOf: ['object-pinned', 'pinned', 'fd'], file: true, does: (f) => `attaches the eBPF program pinned at ${f}` },
];

/**
 * The BPF code a tc command attaches: after `bpf`, the kind of a classifier (`filter add … bpf`) or of an
 * action (`action bpf`), the first word naming a source (`obj FILE`, `bytecode CODE`, `pinned FILE`…).
 */
function tcBpfCode(args: readonly string[]): Array<{ file: string | undefined; does: string }> {
  const found: Array<{ file: string | undefined; does: string }> = [];
  let inBpf = false;
  for (let j = 0; j < args.length; j++) {
    const a = args[j] as string;
    if (a === 'bpf') {
      inBpf = true;
      continue;
    }
    if (!inBpf) continue;
    const source = TC_BPF_SOURCES.find((s) => a === s.exact || s.prefixOf.some((w) => abbreviates(a, w)));
    if (source === undefined) continue;
    inBpf = false;
    const file = source.file ? args[++j] : undefined;
    found.push({ file, does: source.does(file ?? '') });
  }
  return found;
}

/**
 * procps's slashdot(): in a key whose first separator is a dot, dots and slashes swap places, so
 * net.ipv4.conf.eth0/10.rp_filter names net/ipv4/conf/eth0.10/rp_filter; a key with a slash first is a path.
 */
function sysctlPath(key: string): string {
  const first = key.search(/[./]/);
  if (first < 0 || key[first] === '/') return key;
  return key.replace(/[./]/g, (sep) => (sep === '.' ? '/' : '.'));
}

/**
 * The backup `sed -iSUFFIX` keeps of FILE: FILE+SUFFIX, or if SUFFIX has a `*`, SUFFIX with each `*` replaced by
 * FILE's basename, taken from FILE's directory (so `-i'../../x/*'` can put it anywhere).
 */
function sedBackup(file: string, suffix: string): string {
  if (!suffix.includes('*')) return file + suffix;
  const slash = file.lastIndexOf('/');
  return file.slice(0, slash + 1) + suffix.replaceAll('*', file.slice(slash + 1));
}

const MODE_OPT = /^-[rwxXstugoa0-7,+=][rwxXstugoa0-7,+=-]*$/;
const SETCAP_FLAGS = new Set(['-q', '-f', '-h', '--license']);
/** mount's options that only choose what to list (`mount -l -t ext4`). */
const MOUNT_LISTS = new Set(['-l', '--show-labels', '-t', '--types', '-v', '--verbose', '-h', '--help', '-V', '--version']);
const XXD_VALUES = new Set(['c', 'g', 'l', 'n', 'o', 's', 'R']);
const AWK_W_OK = new Set(['version', 'v', 'interactive', 'usage', 'help', 'posix_space', 'sandbox', 'traditional', 'posix', 'lint']);
const RSYNC_MERGE = /^(?:\.|:|merge|dir-merge)[^\s_]*[\s_]+(.+)$/;
const RSYNC_IN_DEST = new Map<string, number>([
  ['--compare-dest', R],
  ['--copy-dest', R],
  ['--link-dest', R],
  ['--backup-dir', W],
  ['-T', W],
  ['--temp-dir', W],
  ['--partial-dir', W],
]);

// ---------------------------------------------------------------------------------------------------------
// Environment assignments (env, sudo)

/**
 * Variables a command may set. Anything else can change what a program does in ways argv analysis
 * cannot see: LD_PRELOAD, PATH, PAGER, GIT_*, BASH_ENV, TAR_OPTIONS, LESSOPEN, HOME (rc files)…
 */
const SAFE_ENV = /^(?:LANG|LANGUAGE|LC_[A-Z]+|TERM|COLUMNS|LINES|NO_COLOR)=[A-Za-z0-9_.:@,+-]*$|^TZ=[A-Za-z0-9_+-]+(?:\/[A-Za-z0-9_+-]+)*$/;

/** Checks NAME=value arguments from argv[j]; returns the index of the command after them. */
function assignments(acc: Acc, argv: readonly string[], j: number): number {
  for (; j < argv.length && (argv[j] as string).includes('='); j++) {
    const a = argv[j] as string;
    if (!SAFE_ENV.test(a)) {
      acc.refuse(
        `setting ${a.slice(0, a.indexOf('='))}=… is not allowed: only LANG, LANGUAGE, LC_*, TZ, TERM, COLUMNS, LINES and NO_COLOR can be set, since variables like LD_PRELOAD, PATH or PAGER change what a program runs`,
      );
    }
  }
  return j;
}

// ---------------------------------------------------------------------------------------------------------
// find

const FIND_ARG = new Set(
  '-amin -atime -cmin -ctime -context -fstype -gid -group -ilname -iname -inum -ipath -iregex -iwholename -links -lname -mmin -mtime -name -path -perm -regex -size -type -uid -used -user -wholename -xtype -maxdepth -mindepth -regextype -printf'.split(' '),
);
const FIND_READ = new Set(['-anewer', '-cnewer', '-newer', '-samefile']);
const FIND_WRITE = new Set(['-fls', '-fprint', '-fprint0']);
const FIND_EXEC = new Set(['-exec', '-execdir', '-ok', '-okdir']);
const FIND_NEWER_XY = /^-newer[aBcm][aBcmt]$/;
const FIND_OPERATORS = new Set(['(', ')', '!', ',']);

/**
 * find's start points are listed; `-delete` writes them; `-exec CMD ;` runs CMD on paths under them, so
 * they are also read, and CMD is analysed with its `{}` arguments standing for the start points.
 */
function find(c: Call): void {
  const { acc, argv } = c;
  let j = c.i;
  for (; j < argv.length; j++) {
    const a = argv[j] as string;
    if (a === '-D') j++;
    else if (a === '--') {
      j++;
      break;
    } else if (a === '-L') acc.needsSandbox('find -L follows symlinks');
    // -H follows only the start points, which the policy resolves.
    else if (a !== '-H' && a !== '-P' && !a.startsWith('-O')) break;
  }
  const starts: string[] = [];
  for (; j < argv.length; j++) {
    const a = argv[j] as string;
    if (a.startsWith('-') || FIND_OPERATORS.has(a)) break;
    starts.push(a);
  }
  if (starts.length === 0) starts.push('.');
  const execs: Array<{ action: string; cmd: string[] }> = [];
  let deletes = false;
  while (j < argv.length) {
    const a = argv[j++] as string;
    if (FIND_EXEC.has(a)) {
      // The command ends at `;`, or at `+` right after `{}`.
      let end = j;
      while (end < argv.length && argv[end] !== ';' && !(argv[end] === '+' && argv[end - 1] === '{}' && end > j)) end++;
      execs.push({ action: a, cmd: argv.slice(j, end) });
      j = end + 1;
    } else if (a === '-delete') deletes = true;
    else if (a === '-follow') acc.needsSandbox('find -follow follows symlinks');
    else if (FIND_READ.has(a)) acc.add(R, argv[j++]);
    else if (FIND_WRITE.has(a)) acc.add(W, argv[j++]);
    else if (a === '-fprintf') {
      acc.add(W, argv[j]);
      j += 2;
    } else if (a === '-files0-from') {
      acc.refuse('find -files0-from reads start points from a file, and those cannot be checked');
      j++;
    } else if (FIND_NEWER_XY.test(a)) {
      if (!a.endsWith('t')) acc.add(R, argv[j]); // -newerXt takes a time, not a file
      j++;
    } else if (FIND_ARG.has(a)) j++;
    else if (!a.startsWith('-') && !FIND_OPERATORS.has(a)) acc.add(R | IFPATH, a); // not an argument find knows
  }
  const role = L | (execs.length > 0 ? R : 0) | (deletes ? W : 0);
  for (const s of starts) acc.add(role, s);
  for (const e of execs) findExec(c, e.action, e.cmd, starts);
}

function findExec(c: Call, action: string, cmd: string[], starts: string[]): void {
  const { acc } = c;
  if (cmd.length === 0) return;
  const inDir = action === '-execdir' || action === '-okdir';
  const sub = new Acc();
  run(sub, cmd, 0, { ...c.ctx, depth: c.ctx.depth + 1, found: true });
  if (sub.refusal !== null) acc.refuse(sub.refusal);
  if (sub.sandboxOnly !== null) acc.needsSandbox(sub.sandboxOnly);
  acc.code.push(...sub.code);
  acc.actsAs.push(...sub.actsAs);
  for (const b of sub.binaries) {
    acc.binaries.push(b);
    if (b.includes('{}')) acc.refuse('find would run the files it finds');
    else if (inDir && b.includes('/') && !b.startsWith('/')) {
      acc.refuse(`find -execdir runs ${b} relative to each found file's directory, which cannot be checked`);
    }
  }
  for (const n of sub.nested) {
    if (n.includes('{}')) acc.refuse('find would put found file names into a shell command string');
    else acc.nested.push(n);
  }
  const map = (paths: string[], role: number): void => {
    for (const p of paths) {
      if (p.includes('{}')) {
        // `{}` and `{}.bak` stay under the start points; `x{}` or `{}/../y` can go anywhere.
        if (p.startsWith('{}') && !p.slice(2).includes('/') && !p.slice(2).includes('{}')) {
          for (const s of starts) acc.add(role, s);
          // find reports a symlink as itself, but CMD may follow it (cat does, rm does not): as for any path
          // a program finds for itself, only the sandbox can confine where it leads.
          acc.needsSandbox(`find ${action} gives the files it finds to ${cmd[0] as string}, which may follow those that are symlinks`);
        } else acc.refuse(`find would substitute found file names into ${p}, which cannot be checked`);
      } else if (inDir && !p.startsWith('/')) {
        acc.refuse(`find -execdir resolves ${p} in each found file's directory, which cannot be checked`);
      } else acc.add(role, p);
    }
  };
  map(sub.reads, R);
  map(sub.writes, W);
  map(sub.lists, L);
}

// ---------------------------------------------------------------------------------------------------------
// tar

const TAR_MODES: ReadonlyArray<[string, string[]]> = [
  ['create', ['-c', '--create']],
  ['extract', ['-x', '--extract', '--get']],
  ['list', ['-t', '--list', '--test-label']],
  ['append', ['-r', '--append', '-u', '--update']],
  ['catenate', ['-A', '--catenate', '--concatenate']],
  ['diff', ['-d', '--diff', '--compare']],
];

function tar(c: Call): void {
  const { acc, spec } = c;
  let args = c.argv.slice(c.i);
  const first = args[0];
  if (first !== undefined && first !== '' && !first.startsWith('-')) {
    // Old style `tar cvf ARCHIVE …`: a bundle of letters whose values follow in order.
    const out: string[] = [];
    let k = 1;
    for (const ch of first) {
      out.push(`-${ch}`);
      if (spec.short.get(ch) === 1 && k < args.length) out.push(args[k++] as string);
    }
    args = [...out, ...args.slice(k)];
  }
  const p = parseOptions(spec, args, 0);
  // -C changes directory for the member operands after it.
  const dirs: Array<{ at: number; dir: string }> = [];
  let cwd = '.';
  for (const o of p.opts) {
    if ((o.name === '-C' || o.name === '--directory') && o.value !== undefined) {
      cwd = joinPath(cwd, o.value);
      dirs.push({ at: o.at, dir: cwd });
    }
  }
  const dirAt = (k: number): string => {
    let d = '.';
    for (const e of dirs) if (e.at <= k) d = e.dir;
    return d;
  };
  applyOpts(c, p);
  const mode = TAR_MODES.find(([, names]) => has(p, names))?.[0];
  const archives = valuesOf(p, '-f', '--file');
  for (const a of archives) {
    const colon = a.indexOf(':');
    if (colon > 0 && !a.slice(0, colon).includes('/') && !has(p, ['--force-local'])) {
      acc.refuse(`tar would reach the remote archive ${a} through rsh, which cannot be checked`);
    }
  }
  // --delete, append and catenate change the archive in place.
  const archiveRole = mode === 'create' ? W : mode === 'extract' || mode === 'list' || mode === 'diff' ? R : R | W;
  for (const a of archives) acc.add(archiveRole, a);
  const members = (role: number): void => p.operands.forEach((o, k) => acc.add(role, joinPath(dirAt(k), o)));
  switch (mode) {
    case 'create':
      members(R | L | (has(p, ['--remove-files']) ? W : 0));
      break;
    case 'append':
      members(R | L);
      break;
    case 'catenate':
      members(R);
      break;
    case 'extract': {
      if (has(p, ['-P', '--absolute-names'])) acc.refuse('tar -x --absolute-names can write anywhere');
      for (const top of valuesOf(p, '--one-top-level')) acc.add(W, joinPath(cwd, top));
      if (has(p, ['-O', '--to-stdout'])) break;
      if (dirs.length === 0) acc.add(W | L, '.');
      for (const d of dirs) acc.add(W | L, d.dir);
      // A member whose directory exists there as a symlink is written through it, unless the archive has
      // an entry for that directory first (and even then with --keep-directory-symlink).
      acc.needsSandbox('tar -x writes through symlinks to directories in the destination');
      break;
    }
    case 'diff':
      acc.needsSandbox('tar -d reads the files that the archive names, through symlinks in the directory');
      if (dirs.length === 0) acc.add(R | L, '.');
      for (const d of dirs) acc.add(R | L, d.dir);
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------------------------------------
// git: run in a repository whose own config and hooks can run programs; remux checks what argv controls.

/**
 * Which git commands need execute_code: all but those that never open a repository. Hooks are the
 * obvious part (commit, push, checkout, merge, rebase, am, …), but even `git status`, `log` and `diff`
 * run what the repository's own config names: core.fsmonitor, clean/smudge filters, textconv and
 * external diff drivers, gpg.program, core.sshCommand and credential helpers on fetch/push, and the
 * post-index-change hook whenever the index is rewritten (status refreshes it). Whoever can write a
 * repository (.git/config, .git/hooks) can make any of these run, and no argv check can see it; so git
 * is a code runner, bounded by the OS sandbox like make or npm.
 */
const GIT_NO_REPOSITORY = new Set(['version', 'help']);
const GIT_RUNS_CODE =
  "runs hooks and programs named in the repository's config (core.fsmonitor, filters, textconv, core.sshCommand), code that remux cannot check";

const GIT_REFUSED = new Set(
  'difftool mergetool filter-branch submodule bisect send-email instaweb daemon web--browse credential credential-cache credential-store upload-pack receive-pack upload-archive shell p4 svn cvsimport cvsserver cvsexportcommit archimport quiltimport imap-send maintenance hook gui citool'.split(' '),
);
/** `git branch`, `git tag`, `git remote` without operands only list. */
const GIT_LIST_BARE = new Set(['branch', 'tag', 'remote']);
/** `git stash list`, `git worktree list`, `git remote show x`… only read. */
const GIT_LIST_VERBS = new Set(['list', 'show']);
const GIT_CONFIG_READ = ['--get', '--get-all', '--get-regexp', '--get-urlmatch', '--list', '-l'];
const GIT_VERB_SUBS = new Set(['stash', 'worktree', 'notes', 'remote', 'reflog', 'sparse-checkout']);
const GIT_CONFIG_WRITE_VERBS = new Set(['set', 'unset', 'rename-section', 'remove-section', 'edit']);

function git(c: Call): void {
  const { acc, argv } = c;
  const g = parseOptions(GIT_GLOBAL, argv, c.i);
  let root = '.';
  let gitDir: string | undefined;
  let work: string | undefined;
  for (const o of g.opts) {
    if (o.name === '-C' && o.value) root = joinPath(root, o.value);
    else if (o.name === '-c' || o.name === '--config-env') {
      acc.refuse('git -c/--config-env can set options that run programs (core.pager, core.sshCommand, …)');
    } else if (o.name === '--exec-path' && o.value !== undefined) acc.refuse('git --exec-path=DIR runs git programs from DIR');
    else if (o.name === '--git-dir' && o.value !== undefined) gitDir = joinPath(root, o.value);
    else if (o.name === '--work-tree' && o.value !== undefined) work = joinPath(root, o.value);
  }
  for (const v of g.unknown) acc.add(R, joinPath(root, v));
  const sub = argv[g.end];
  if (sub === undefined) return;
  if (!GIT_NO_REPOSITORY.has(sub)) acc.runsCode(program(c), GIT_RUNS_CODE);
  if (GIT_REFUSED.has(sub)) {
    acc.refuse(`git ${sub} runs programs, hooks or editors that cannot be checked`);
    return;
  }
  if (!GIT_READS.has(sub) && !GIT_WRITES.has(sub)) {
    acc.refuse(`git ${sub}: not a git command remux knows (an alias or a git-${sub} program cannot be checked)`);
    return;
  }
  const spec = GIT_SUBS.get(sub) ?? GIT_OTHER;
  const sc: Call = { ...c, spec, name: `git ${sub}` };
  const p = parseOptions(spec, argv, g.end + 1);
  const ops = p.operands;
  const writes =
    (GIT_WRITES.has(sub) &&
      !(GIT_LIST_BARE.has(sub) && ops.length === 0) &&
      !(GIT_VERB_SUBS.has(sub) && GIT_LIST_VERBS.has(ops[0] ?? ''))) ||
    (sub === 'hash-object' && has(p, ['-w']));
  const role = writes ? R | W : R;
  applyOpts(sc, p, root, role);
  if (gitDir !== undefined) acc.add(role | L, gitDir);
  const tree = work ?? root;
  switch (sub) {
    case 'config':
      acc.add(R | L, tree);
      if (GIT_CONFIG_WRITE_VERBS.has(ops[0] ?? '') || (ops.length >= 2 && !has(p, GIT_CONFIG_READ) && ops[0] !== 'get')) {
        acc.refuse('git config changes settings that can make git run programs (core.pager, core.fsmonitor, alias.*)');
      }
      return;
    case 'clone': {
      // Creates DIR (default: a directory named after the repository, in the cwd).
      const [url, dir] = ops;
      if (url !== undefined && !isRemote(url)) acc.add(R | L, joinPath(root, fileUrlPath(url) ?? url));
      acc.add(W | L, dir === undefined ? root : joinPath(root, dir));
      return;
    }
    case 'init':
      acc.add(W | L, ops[0] === undefined ? root : joinPath(root, ops[0]));
      return;
    case 'format-patch':
      if (!has(p, ['-o', '--output-directory'])) acc.add(W, root); // writes NNNN-*.patch into the cwd
      break;
    default:
      break;
  }
  acc.add(role | L, tree);
  // Path-looking operands (`--no-index` diffs, bundle files, worktree paths). Revisions (`origin/main`,
  // `HEAD:src/x`) may look like paths too; reading them as cwd-relative paths is harmless.
  const noIndex = has(p, ['--no-index']);
  for (const o of ops) if (noIndex || (looksLikePath(o) && !isRemote(o))) acc.add(role, joinPath(root, o));
}

// ---------------------------------------------------------------------------------------------------------
// curl, ssh, scp, rsync

function curl(c: Call): void {
  const { acc } = c;
  const p = parsed(c);
  const urls = [...p.operands];
  const globbing = !has(p, ['-g', '--globoff']);
  const outputDirs = valuesOf(p, '--output-dir');
  let remoteName: string | undefined;
  for (const { name, value: v } of p.opts) {
    if (name === '-O' || name === '--remote-name' || name === '--remote-name-all') remoteName ??= name;
    if (v === undefined) continue;
    switch (name) {
      case '-o':
      case '--output':
        // curl writes DIR/FILE, even for an absolute FILE; FILE alone is checked by the table.
        for (const d of outputDirs) acc.add(W, `${d}/${v}`);
        break;
      case '-w':
      case '--write-out':
        // %output{FILE} and %output{>>FILE} send the rest of the write-out to a file.
        for (const m of v.matchAll(CURL_OUTPUT)) acc.add(W, m[1]);
        if (v.startsWith('@')) acc.add(R, v.slice(1));
        break;
      case '-d':
      case '--data':
      case '--data-ascii':
      case '--data-binary':
      case '--json':
      case '--url-query':
      case '-H':
      case '--header':
      case '--proxy-header':
        if (v.startsWith('@')) acc.add(R, v.slice(1));
        break;
      case '-T':
      case '--upload-file':
        if (globbing && CURL_GLOB.test(v)) acc.refuse(`curl would expand the glob in ${v}, which cannot be checked`);
        break;
      case '--data-urlencode':
      case '--variable': {
        // [name]@file reads the file; name=content is literal.
        const at = v.indexOf('@');
        const eq = v.indexOf('=');
        if (at >= 0 && (eq < 0 || at < eq)) acc.add(R, v.slice(at + 1));
        break;
      }
      case '-F':
      case '--form': {
        const value = v.slice(v.indexOf('=') + 1);
        if (value.startsWith('@') || value.startsWith('<')) acc.add(R, formFile(value.slice(1)));
        break;
      }
      case '-b':
      case '--cookie':
        if (!v.includes('=')) acc.add(R, v); // without '=' it is a cookie file
        break;
      case '--url':
        urls.push(v);
        break;
      default:
        break;
    }
  }
  if (remoteName !== undefined) {
    if (outputDirs.length === 0) acc.add(W, '.'); // -O names the file after the URL, in the cwd
    // --no-clobber creates it with O_EXCL instead of opening whatever has that name.
    if (!has(p, ['--no-clobber'])) acc.needsSandbox(`curl ${remoteName} writes a file named after the URL, through a symlink of that name`);
  }
  const upload = has(p, ['-T', '--upload-file']);
  for (const u of urls) {
    const path = fileUrlPath(u);
    if (path === null) continue;
    if (globbing && CURL_GLOB.test(u)) acc.refuse(`curl would expand the glob in ${u}, which cannot be checked`);
    acc.add(upload ? W : R, path);
  }
}

const CURL_GLOB = /[[\]{}]/;
const CURL_OUTPUT = /%output\{(?:>>)?([^}]*)\}/g;

/** `-F name=@"file;x";type=text/plain`: the file name, quoted or up to the first `;`. */
function formFile(f: string): string {
  if (!f.startsWith('"')) return f.split(';')[0] as string;
  const close = f.indexOf('"', 1);
  return close < 0 ? f.slice(1) : f.slice(1, close);
}

/** ssh_config keys that name no program and no file; others are refused or mapped below. */
const SSH_SAFE_KEYS = new Set(
  'addkeystoagent addressfamily batchmode bindaddress bindinterface canonicaldomains canonicalizefallbacklocal canonicalizehostname canonicalizemaxdots canonicalizepermittedcnames casignaturealgorithms checkhostip ciphers clearallforwardings compression connectionattempts connecttimeout controlmaster controlpersist dynamicforward enableescapecommandline escapechar exitonforwardfailure fingerprinthash forkafterauthentication forwardagent forwardx11 forwardx11timeout forwardx11trusted gatewayports gssapiauthentication gssapidelegatecredentials hashknownhosts hostbasedacceptedalgorithms hostbasedauthentication hostkeyalgorithms hostkeyalias hostname identitiesonly ipqos kbdinteractiveauthentication kexalgorithms localforward loglevel logverbose macs nohostauthenticationforlocalhost numberofpasswordprompts obscurekeystroketiming passwordauthentication permitremoteopen port preferredauthentications proxyjump pubkeyacceptedalgorithms pubkeyauthentication rekeylimit remoteforward requesttty requiredrsasize sendenv serveralivecountmax serveraliveinterval sessiontype setenv stdinnull streamlocalbindmask streamlocalbindunlink stricthostkeychecking syslogfacility tcpkeepalive tunnel tunneldevice updatehostkeys user verifyhostkeydns visualhostkey'.split(
    ' ',
  ),
);
const SSH_PATH_KEYS = new Map<string, number>([
  ['identityfile', R],
  ['certificatefile', R],
  ['globalknownhostsfile', R],
  ['revokedhostkeys', R],
  ['userknownhostsfile', R | W],
  ['controlpath', W],
  ['identityagent', W],
]);
const SSH_NO_COMMAND = ['-N', '-W', '-G', '-O', '-Q', '-V'];
const SSH_OPTION = /^\s*([A-Za-z0-9]+)\s*(?:=\s*|\s+)?(.*)$/;
const SPACES = /\s+/;

function sshOptions(acc: Acc, p: Parsed): void {
  for (const v of valuesOf(p, '-o')) {
    const m = SSH_OPTION.exec(v);
    const key = (m?.[1] ?? '').toLowerCase();
    const value = m?.[2] ?? '';
    const role = SSH_PATH_KEYS.get(key);
    if (role !== undefined) {
      for (const f of value.split(SPACES)) if (f !== 'none') acc.add(role, f);
    } else if (!SSH_SAFE_KEYS.has(key)) {
      acc.refuse(`ssh -o ${m?.[1] ?? v} is not allowed: it can run programs or load files that cannot be checked`);
    }
  }
}

/** `host:path`, `user@host:path`, `host::module`, `scp://…`, `rsync://…` are remote. */
function isRemote(operand: string): boolean {
  if (URL_RE.test(operand)) return !FILE_URL.test(operand);
  const colon = operand.indexOf(':');
  const slash = operand.indexOf('/');
  return colon > 0 && (slash < 0 || colon < slash);
}

/**
 * For tools that open the file they write into a directory destination (ToolSpec.writesInto): DIR/NAME
 * for each source, NAME being its basename, or with --parents its whole path. If DIR is not a directory
 * the extra path is harmless; if DIR/NAME is a symlink, the policy checks where it leads.
 */
function writesInto(c: Call, p: Parsed, dirs: readonly string[], sources: readonly string[]): void {
  if (!c.spec.writesInto) return;
  const parents = has(p, ['--parents']);
  // A found file given to find -exec makes the command sandbox-only anyway; `{}/{}` would be refused.
  const placeholder = (t: string): boolean => c.ctx.found && t.includes('{}');
  for (const s of sources) {
    const trimmed = s.replace(TRAILING_SLASHES, '');
    const name = parents ? trimmed.replace(LEADING_SLASHES, '') : trimmed.slice(trimmed.lastIndexOf('/') + 1);
    if (name === '' || placeholder(name) || (!parents && (name === '.' || name === '..'))) continue;
    for (const d of dirs) if (!placeholder(d)) c.acc.add(W, joinPath(d, name));
  }
}

const TRAILING_SLASHES = /\/+$/;
const LEADING_SLASHES = /^\/+/;

/** SOURCE… DEST: local sources get `role`, a local destination is written. */
function copyOperands(c: Call, p: Parsed, role: number): void {
  const ops = p.operands;
  ops.forEach((o, k) => {
    if (!isRemote(o)) c.acc.add(k === ops.length - 1 && ops.length > 1 ? W : role, o);
  });
}

// ---------------------------------------------------------------------------------------------------------
// sed scripts, after GNU sed's compile.c

interface SedFound {
  reads: string[];
  writes: string[];
}

const SED_SPECIAL = new Set(['/dev/stdin', '/dev/stdout', '/dev/stderr']);
const SED_SIMPLE = new Set(['=', 'd', 'D', 'F', 'g', 'G', 'h', 'H', 'n', 'N', 'p', 'P', 'x', 'z']);
const isBlank = (ch: string): boolean => ch === ' ' || ch === '\t';
const isSpace = (ch: string): boolean => ch === ' ' || ch === '\t' || ch === '\n' || ch === '\v' || ch === '\f' || ch === '\r';
const isDigit = (ch: string): boolean => ch >= '0' && ch <= '9';
const isWordStart = (ch: string): boolean => (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch === '_';

class SedError extends Error {}

/** Finds the files a sed script reads (r, R) and writes (w, W, s///w); returns a reason for e and errors. */
export function scanSed(s: string): SedFound | string {
  const found: SedFound = { reads: [], writes: [] };
  let p = 0;
  const next = (): string => (p < s.length ? s.charAt(p++) : '');
  const back = (ch: string): void => {
    if (ch !== '') p--;
  };
  const nonblank = (): string => {
    let ch;
    do ch = next();
    while (isBlank(ch));
    return ch;
  };
  const fail = (what: string): never => {
    throw new SedError(what);
  };
  const endOfCmd = (): void => {
    const ch = nonblank();
    if (ch === '}' || ch === '#') back(ch);
    else if (ch !== '' && ch !== '\n' && ch !== ';') fail('extra characters after a command');
  };
  const integer = (): void => {
    let ch;
    do ch = next();
    while (isDigit(ch));
    back(ch);
  };
  const label = (): void => {
    let ch = nonblank();
    while (ch !== '' && ch !== '\n' && !isBlank(ch) && ch !== ';' && ch !== '}' && ch !== '#') ch = next();
    back(ch);
  };
  const filename = (): string => {
    while (p < s.length && isBlank(s.charAt(p))) p++;
    const from = p;
    while (p < s.length && s.charAt(p) !== '\n') p++; // the rest of the line, `;` and `}` included
    if (p === from) fail('missing file name');
    return s.slice(from, p);
  };
  const charClass = (): string => {
    let ch = next();
    if (ch === '^') ch = next();
    if (ch === ']') ch = next();
    let state = 0;
    let delim = '';
    for (; ; ch = next()) {
      if (ch === '' || ch === '\n') return ch;
      if (ch === '.' || ch === ':' || ch === '=') {
        if (state === 1) {
          delim = ch;
          state = 2;
          continue;
        }
        if (state === 2 && ch === delim) {
          state = 3;
          continue;
        }
      } else if (ch === '[') {
        if (state === 0) state = 1;
        continue;
      } else if (ch === ']') {
        if (state === 0 || state === 1) return ch;
        if (state === 3) state = 0;
      }
      state &= ~1;
    }
  };
  const slashed = (slash: string, regex: boolean): void => {
    for (let ch = next(); ch !== '' && ch !== '\n'; ch = next()) {
      if (ch === slash) return;
      if (ch === '\\') {
        if (next() === '') break;
      } else if (ch === '[' && regex && charClass() !== ']') break;
    }
    fail('unterminated regular expression or replacement');
  };
  const address = (ch: string): boolean => {
    if (ch === '/' || ch === '\\') {
      slashed(ch === '\\' ? next() : ch, true);
      for (ch = nonblank(); ch === 'I' || ch === 'M'; ch = nonblank());
      back(ch);
      return true;
    }
    if (isDigit(ch)) {
      integer();
      ch = nonblank();
      if (ch === '~') {
        back(nonblank());
        integer();
      } else back(ch);
      return true;
    }
    if (ch === '+' || ch === '~') {
      back(nonblank());
      integer();
      return true;
    }
    return ch === '$';
  };
  const text = (): void => {
    // a, i, c: `a\` NEWLINE text, `a\text` or GNU's one-line `a text`, up to an unescaped newline.
    const ch = nonblank();
    if (ch === '') fail('expected \\ after a, c or i');
    if (ch !== '\\') back(ch);
    else next();
    while (p < s.length) {
      const t = next();
      if (t === '\\') next();
      else if (t === '\n') break;
    }
  };
  try {
    for (;;) {
      let ch = next();
      while (ch === ';' || isSpace(ch)) ch = next();
      if (ch === '') break;
      if (address(ch)) {
        ch = nonblank();
        if (ch === ',') {
          if (!address(nonblank())) fail('unexpected ,');
          ch = nonblank();
        }
      }
      if (ch === '!') {
        ch = nonblank();
        if (ch === '!') fail('multiple !s');
      }
      if (SED_SIMPLE.has(ch)) {
        endOfCmd();
        continue;
      }
      switch (ch) {
        case '#':
          while (p < s.length && s.charAt(p) !== '\n') p++;
          break;
        case '{':
          break;
        case '}':
          endOfCmd();
          break;
        case 'v':
        case ':':
        case 'b':
        case 't':
        case 'T':
          label();
          break;
        case 'q':
        case 'Q':
        case 'l':
        case 'L':
          ch = nonblank();
          if (isDigit(ch)) integer();
          else back(ch);
          endOfCmd();
          break;
        case 'a':
        case 'i':
        case 'c':
          text();
          break;
        case 'e':
          return 'the e command runs a shell command';
        case 'r':
        case 'R': {
          const f = filename();
          if (!SED_SPECIAL.has(f)) found.reads.push(f);
          break;
        }
        case 'w':
        case 'W': {
          const f = filename();
          if (!SED_SPECIAL.has(f)) found.writes.push(f);
          break;
        }
        case 'y': {
          const slash = next();
          slashed(slash, false);
          slashed(slash, false);
          endOfCmd();
          break;
        }
        case 's': {
          const slash = next();
          slashed(slash, true);
          slashed(slash, false);
          for (;;) {
            ch = nonblank();
            if (ch === 'e') return 'the s///e flag runs the pattern space as a shell command';
            if (ch === 'w') {
              const f = filename();
              if (!SED_SPECIAL.has(f)) found.writes.push(f);
              break;
            }
            if (ch === '}' || ch === '#') {
              back(ch);
              break;
            }
            if (ch === '' || ch === '\n' || ch === ';') break;
            if (ch === '\r' && next() === '\n') break;
            if (!'gpiImM0123456789'.includes(ch)) fail(`unknown option to s: ${ch}`);
          }
          break;
        }
        default:
          fail(ch === '' ? 'missing command' : `unknown command ${ch}`);
      }
    }
  } catch (e) {
    if (e instanceof SedError) return `the script could not be parsed (${e.message})`;
    throw e;
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------------
// awk programs

/** After these keywords an operand is expected, so `/` starts a regular expression. */
const AWK_OPERAND_NEXT = new Set(['print', 'printf', 'return', 'exit', 'case', 'else', 'do', 'in', 'delete', 'function', 'func']);
const AWK_CONTROL = new Set(['if', 'while', 'for', 'switch']);

/**
 * Scans an awk program for what reaches outside its input files: system(), pipes to and from commands,
 * output redirection, getline from a file, ARGV (which names the input files), and gawk's @ directives
 * and indirect calls. Returns the reason to refuse, or null.
 *
 * `>` is taken for output redirection inside actions unless parenthesised (`if (a > b)`), and for a
 * comparison in patterns (`$3 > 100`). `/` starts a regular expression where an operand is expected,
 * including after the `)` of if/while/for, as awk's grammar decides.
 */
export function scanAwk(s: string): string | null {
  let operand = false; // the previous token ends an operand, so `/` divides
  let braces = 0;
  const parens: boolean[] = []; // per open ( or [: whether it is an if/while/for header
  let control = false;
  let getlineAt = -1; // paren depth of a getline still in effect, or -1
  let i = 0;
  const n = s.length;
  const skipQuoted = (close: string, regex: boolean): boolean => {
    for (i++; i < n; i++) {
      const ch = s.charAt(i);
      if (ch === '\\') i++;
      else if (ch === '\n') return false;
      else if (ch === close) return true;
      else if (regex && ch === '[') {
        i++;
        if (s.charAt(i) === '^') i++;
        if (s.charAt(i) === ']') i++;
        for (; i < n && s.charAt(i) !== ']'; i++) {
          const b = s.charAt(i);
          if (b === '\n') return false;
          if (b === '\\') i++;
          else if (b === '[' && ':.='.includes(s.charAt(i + 1)) && s.charAt(i + 1) !== '') {
            const end = s.indexOf(`${s.charAt(i + 1)}]`, i + 2);
            if (end < 0) return false;
            i = end + 1;
          }
        }
      }
    }
    return false;
  };
  while (i < n) {
    const ch = s.charAt(i);
    if (ch === ' ' || ch === '\t' || ch === '\r') {
      i++;
      continue;
    }
    if (ch === '\\' && (s.charAt(i + 1) === '\n' || (s.charAt(i + 1) === '\r' && s.charAt(i + 2) === '\n'))) {
      i += s.charAt(i + 1) === '\n' ? 2 : 3;
      continue;
    }
    if (ch === '\n' || ch === ';') {
      operand = false;
      getlineAt = -1;
      i++;
      continue;
    }
    if (ch === '#') {
      while (i < n && s.charAt(i) !== '\n') i++;
      continue;
    }
    if (ch === '"' || (ch === '/' && !operand)) {
      if (!skipQuoted(ch, ch === '/')) return 'could not be parsed (unterminated string or regular expression)';
      i++;
      operand = true;
      continue;
    }
    if (isWordStart(ch)) {
      let j = i + 1;
      while (j < n && (isWordStart(s.charAt(j)) || isDigit(s.charAt(j)))) j++;
      const word = s.slice(i, j);
      i = j;
      if (word === 'system') return 'calls system(), which runs a shell command';
      if (word === 'ARGV') return 'uses ARGV, which can change the files it reads';
      if (word === 'getline') getlineAt = parens.length;
      control = AWK_CONTROL.has(word);
      operand = !control && !AWK_OPERAND_NEXT.has(word);
      continue;
    }
    if (isDigit(ch) || ch === '.') {
      i++;
      while (i < n && (isWordStart(s.charAt(i)) || isDigit(s.charAt(i)) || s.charAt(i) === '.')) i++;
      operand = true;
      continue;
    }
    i++;
    switch (ch) {
      case '@':
        return 'uses @ (gawk @include, @load or an indirect function call)';
      case '|':
        if (s.charAt(i) !== '|') return 'pipes to or from a command';
        i++;
        operand = false;
        break;
      case '>':
        if (braces > 0 && parens.length === 0) return 'redirects output to a file or command';
        operand = false;
        break;
      case '<':
        if (getlineAt >= 0) return 'reads a file with getline <';
        operand = false;
        break;
      case '(':
      case '[':
        parens.push(control && ch === '(');
        operand = false;
        break;
      case ')':
      case ']': {
        if (parens.length === 0) return 'could not be parsed (unbalanced parentheses)';
        const header = parens.pop() === true;
        if (getlineAt > parens.length) getlineAt = -1;
        operand = !header; // after `if (…)` a statement, maybe a regular expression, follows
        break;
      }
      case '{':
        braces++;
        operand = false;
        getlineAt = -1;
        break;
      case '}':
        if (--braces < 0) return 'could not be parsed (unbalanced braces)';
        operand = false;
        getlineAt = -1;
        break;
      case '+':
      case '-':
        if (s.charAt(i) === ch) i++; // ++ and -- keep the operand state (postfix) or expect one (prefix)
        else operand = false;
        break;
      case '$':
        operand = false;
        break;
      default:
        operand = false;
    }
    control = false;
  }
  if (braces !== 0 || parens.length !== 0) return 'could not be parsed (unbalanced braces or parentheses)';
  return null;
}
