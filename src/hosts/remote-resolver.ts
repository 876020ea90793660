// Path and program answers from a remote host, for the policy engine's synchronous PathResolver.
//
// Symlinks must be resolved on the host the command runs on. evaluate() asks its questions one by one,
// synchronously, so they are collected first: evaluate() runs with a recording resolver that notes every
// realpath(path, cwd) and which(name) and answers placeholders; one script run on the host answers them
// all; the answers are served from memory. Some questions depend on earlier answers (a program that
// resolves to `busybox` makes the rules ask about `busybox`), so the recording pass repeats with the
// answers known so far until it asks nothing new: usually one round trip, rarely two.
//
// The host answers with GNU realpath, the way the local resolver does: `-e` for a path that exists; for
// a missing one (ENOENT, ENOTDIR) `-m`, which follows symlinks even to missing targets and applies `..`
// after them. Any other failure (ELOOP, EACCES) is an error, and the check denies: `-m` alone would
// answer those lexically, and a command run with more rights (sudo) could then follow a link the
// check never saw. Program names are looked up the way the wrapper's shell will find them: the first
// secure PATH entry holding a regular executable file (`test -f` and `-x`), then its realpath. Never
// `command -v`, which reports shell builtins and functions.
import { posix } from 'node:path';
import { quoteWord } from '../command/render.js';
import type { CommandList } from '../command/types.js';
import { BY_NAME_DIR, evaluate, programsMatchByName } from '../policy/evaluate.js';
import { ResolveError, selfReference } from '../policy/resolve.js';
import type { PathResolver, Policy } from '../policy/types.js';
import { TransportError } from './types.js';

export interface RemoteLookup {
  /** Runs a POSIX sh script on the host with PATH set to securePath and returns its stdout. */
  run?(script: string): Promise<Buffer>;
  /** Or asks the host directly (an outbound agent answers with its own local resolver). */
  answer?(paths: string[], names: string[]): Promise<Answers>;
  /** The directories program names are looked up in, `:`-separated: the PATH commands will run with. */
  securePath: string;
  /** `which` answers of this connection, reused briefly. */
  whichCache?: WhichCache;
}

/**
 * Recent `which` answers of one connection. The secure PATH holds root-owned directories, so changing
 * what a name resolves to already needs root on the host; reusing an answer for a few seconds saves a
 * round trip per command (the batch goal is a few ms per command; a round trip costs about one exec).
 * Paths are never cached: a symlink in /tmp can change between two commands.
 */
export class WhichCache {
  private readonly entries = new Map<string, { path: string | null; until: number }>();

  constructor(
    readonly ttlMs = 5000,
    private readonly now: () => number = Date.now,
  ) {}

  get(name: string): string | null | undefined {
    const hit = this.entries.get(name);
    return hit !== undefined && hit.until > this.now() ? hit.path : undefined;
  }

  set(name: string, path: string | null): void {
    if (this.ttlMs <= 0) return;
    // Names come from callers: bound the memory they can claim.
    if (this.entries.size >= MAX_CACHED_NAMES) this.entries.clear();
    this.entries.set(name, { path, until: this.now() + this.ttlMs });
  }

  clear(): void {
    this.entries.clear();
  }
}

export type Answer = { path: string } | { error: string };
export interface Answers {
  paths: Answer[];
  names: Array<Answer | null>;
}

const MAX_ROUNDS = 4;
const MAX_CACHED_NAMES = 1024;
const PATH_MAX = 4096; // bytes with the NUL, as in resolve.ts

/** Answers every path and program query evaluate(policy, list, cwd) makes, fetched from the host. */
export async function prefetchResolver(policy: Policy, list: CommandList, cwd: string, remote: RemoteLookup): Promise<PathResolver> {
  const dirs = searchDirs(remote.securePath);
  const paths = new Map<string, Answer>();
  const names = new Map<string, Answer | null>();
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const askPaths = new Set<string>();
    const askNames = new Set<string>();
    const recorder: PathResolver = {
      realpath(path, base) {
        const abs = absolute(path, base);
        const known = paths.get(abs);
        if (known !== undefined) return answerPath(known);
        askPaths.add(abs);
        return posix.resolve(abs);
      },
      which(name) {
        if (!isProgramName(name)) return null;
        const known = knownName(names, remote.whichCache, name);
        if (known !== undefined) return known === null ? null : answerPath(known);
        askNames.add(name);
        // A typical answer, so the rules' follow-up questions for this name are asked in this round too.
        return `${dirs[0] ?? ''}/${name}`;
      },
    };
    evaluate(policy, list, { cwd, resolver: recorder });
    if (askPaths.size === 0 && askNames.size === 0) break;
    if (askPaths.size === 0 && programsMatchByName(policy)) {
      // Nothing but bare program names, under rules that only allow by name: the host's answers could
      // not change the decision, so the round trip is skipped (a missing program fails there with 127).
      for (const n of askNames) names.set(n, { path: `${BY_NAME_DIR}/${n}` });
      break;
    }
    const asked = { paths: [...askPaths], names: [...askNames] };
    const answers = await fetchAnswers(asked.paths, asked.names, dirs, remote);
    asked.paths.forEach((p, i) => paths.set(p, answers.paths[i] as Answer));
    asked.names.forEach((n, i) => {
      const answer = answers.names[i] as Answer | null;
      names.set(n, answer);
      if (answer === null || 'path' in answer) remote.whichCache?.set(n, answer === null ? null : answer.path);
    });
  }

  return {
    realpath(path, base) {
      const abs = absolute(path, base);
      const known = paths.get(abs);
      if (known === undefined) throw new Error(`internal: the host was not asked to resolve ${abs}`);
      return answerPath(known);
    },
    which(name) {
      if (!isProgramName(name)) return null;
      const known = names.get(name);
      if (known === undefined) throw new Error(`internal: the host was not asked where ${name} is`);
      return known === null ? null : answerPath(known);
    },
  };
}

/**
 * The script answering `paths` (absolute) and `names`: NUL-terminated tokens, see parseAnswers.
 *
 * realpath resolves /proc/self (and /dev/fd, /dev/std*, which lead there) as its own process, where the
 * program will find its own working directory and descriptors. So realpath runs in the script's own
 * /proc/PID/fdinfo with its stdin and stderr on /proc/PID/stat (PID: the script's shell, the first
 * token): a path through its working directory or those descriptors resolves under /proc/PID, and one
 * through its stdout (the pipe back) to /proc/…/fd/pipe:[…]. parseAnswers refuses both.
 */
export function resolverScript(paths: readonly string[], names: readonly string[], dirs: readonly string[]): string {
  // realpath's messages are matched below.
  const lines = [
    'LC_ALL=C; export LC_ALL',
    `set -- ${paths.map(quoteWord).join(' ')}`,
    `printf 'm%s\\0' "$$"`,
    // Without /proc, /proc/self leads nowhere for the program either.
    'i=/proc/$$/stat; cd /proc/$$/fdinfo 2>/dev/null && [ -r "$i" ] || i=/dev/null',
  ];
  if (names.length > 0) {
    lines.push(
      `for n in ${names.map(quoteWord).join(' ')}; do`,
      '  h=',
      `  for d in ${dirs.map(quoteWord).join(' ')}; do`,
      '    if [ -f "$d/$n" ] && [ -x "$d/$n" ]; then h=$d/$n; set -- "$@" "$h"; break; fi',
      '  done',
      `  printf 'w%s\\0' "$h"`,
      'done',
    );
  }
  // One realpath for everything when all paths exist; otherwise one by one, so a missing path can be
  // resolved as far as it exists while every other failure (ELOOP, EACCES) stays an error. A command
  // substitution drops trailing newlines, which a file name may end with: the `.` keeps them. realpath
  // comes from the system's default PATH (`command -p`): the secure PATH is for commands, not our tools.
  lines.push(
    `if [ $# -eq 0 ] || command -p realpath -e -z -- "$@" <"$i" 2<"$i"; then printf 'ok\\0'; else`,
    `  printf 'each\\0'`,
    '  for a; do',
    '    p=$(command -p realpath -e -- "$a" <"$i" 2>&1 && echo .) || case $p in',
    `      *': No such file or directory' | *': Not a directory') p=$(command -p realpath -m -- "$a" <"$i" 2>&1 && echo .) ;;`,
    '      *) false ;;',
    '    esac',
    `    if [ $? -eq 0 ]; then printf '%s\\0' "\${p%?.}"; else printf 'e%s\\0' "$p"; fi`,
    '  done',
    'fi',
  );
  return lines.join('\n');
}

/**
 * Tokens: `w<hit>` per name (`w` alone when no PATH entry holds it), then the realpaths of the paths
 * and of the hits (absolute, so they start with `/`) and `ok`; or, when one failed, `each` and per
 * argument its realpath or `e<message>`.
 */
export function parseAnswers(out: Buffer, paths: readonly string[], names: readonly string[]): { paths: Answer[]; names: Array<Answer | null> } {
  const tokens = out.toString('utf8').split('\0');
  if (tokens.pop() !== '') throw new Error('the answer does not end with NUL');
  const shell = tokens.shift();
  if (shell === undefined || !/^m\d+$/.test(shell)) throw new Error(`expected the script's pid, got ${JSON.stringify(shell)}`);
  const own = `/proc/${shell.slice(1)}`;
  /** realpath's own working directory or descriptors (see resolverScript), not the program's. */
  const selfReferring = (p: string): boolean => p === own || p.startsWith(`${own}/`) || /^\/proc\/\d+\/fd\/[a-z_]+:\[/.test(p);
  const hits = names.map((_, i) => {
    const t = tokens[i];
    if (t === undefined || !t.startsWith('w')) throw new Error(`expected a program lookup, got ${JSON.stringify(t)}`);
    return t.length > 1 ? t.slice(1) : null;
  });
  const args = paths.length + hits.filter((h) => h !== null).length;
  const end = tokens.findIndex((t, i) => i >= names.length && (t === 'ok' || t === 'each'));
  if (end < 0) throw new Error('the answer has no end marker');
  const each = tokens[end] === 'each';
  const raw = each ? tokens.slice(end + 1) : tokens.slice(names.length, end);
  if (raw.length !== args) throw new Error(`expected ${args} answers, got ${raw.length}`);
  const answers = raw.map((t, i): Answer => {
    if (t.startsWith('/')) return selfReferring(t) ? { error: selfReference(i < paths.length ? (paths[i] as string) : t).message } : { path: t };
    if (each && t.startsWith('e')) return { error: t.slice(1).trim() };
    throw new Error(`unexpected answer ${JSON.stringify(t)}`);
  });
  let next = paths.length;
  return {
    paths: answers.slice(0, paths.length),
    names: hits.map((h) => (h === null ? null : (answers[next++] as Answer))),
  };
}

async function fetchAnswers(paths: string[], names: string[], dirs: string[], remote: RemoteLookup): Promise<Answers> {
  try {
    if (remote.answer) return checkedAnswers(await remote.answer(paths, names), paths, names);
    if (!remote.run) throw new Error('internal: a RemoteLookup needs run() or answer()');
    return parseAnswers(await remote.run(resolverScript(paths, names, dirs)), paths, names);
  } catch (err) {
    // An unreachable host is the caller's failure (exit 255). A host that cannot answer denies every
    // check that needed the answer, with the reason.
    if (err instanceof TransportError) throw err;
    const error = { error: `the host could not answer: ${(err as Error).message}` };
    return { paths: paths.map(() => error), names: names.map(() => error) };
  }
}

/** Answers from a host that answers directly: one per question, or the host cannot answer. */
function checkedAnswers(got: Answers, paths: readonly string[], names: readonly string[]): Answers {
  if (got.paths.length !== paths.length || got.names.length !== names.length) {
    throw new Error(`expected ${paths.length} paths and ${names.length} names, got ${got.paths.length} and ${got.names.length}`);
  }
  return got;
}

function answerPath(answer: Answer): string {
  if ('error' in answer) throw new ResolveError(answer.error);
  return answer.path;
}

/**
 * This evaluation's answer for a name, else the connection's recent one (kept for this evaluation, so it
 * cannot expire between the recording pass and the real one); undefined when the host must be asked.
 */
function knownName(names: Map<string, Answer | null>, cache: WhichCache | undefined, name: string): Answer | null | undefined {
  if (names.has(name)) return names.get(name);
  const hit = cache?.get(name);
  if (hit === undefined) return undefined;
  const answer = hit === null ? null : { path: hit };
  names.set(name, answer);
  return answer;
}

/** The absolute path the host is asked about; the same refusals as the local resolver. */
function absolute(path: string, cwd: string): string {
  if (path.includes('\0')) throw new ResolveError('path contains a NUL byte');
  if (!cwd.startsWith('/')) throw new ResolveError(`working directory ${cwd} is not absolute`);
  const abs = path.startsWith('/') ? path : `${cwd}/${path}`;
  if (Buffer.byteLength(abs) >= PATH_MAX) throw new ResolveError(`path too long (${abs.length} characters)`);
  return abs;
}

/** Names the local resolver would look up at all (anything else is answered "absent" without asking). */
function isProgramName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

/** The secure PATH's directories programs are looked up in (absolute ones only). */
export function searchDirs(securePath: string): string[] {
  return securePath.split(':').filter((d) => d.startsWith('/') && !d.includes('\0'));
}
