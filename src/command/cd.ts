// `cd DIR && …` and `cd DIR; …` at the start of a command list: remux has no shell to change directory
// in, so the leading cds become the working directory the rest runs in (the policy checks each as
// list_directory; every transport gets it as the request's cwd). Any other cd is refused with its position.
import type { CommandList, Stage } from './types.js';

export interface LeadingCd {
  /** The directories of the leading cds, in order, each relative to the one before (the first to the cwd). */
  dirs: Array<{ dir: string; stage: number }>;
  /** The list without them: what actually runs. */
  rest: CommandList;
  /** Set when a cd cannot be honoured: the whole command is refused with this reason. */
  refusal: { reason: string; stage: number } | null;
}

const isCd = (s: Stage): boolean => s.argv[0] === 'cd';
const column = (s: Stage): string => `at column ${s.pos + 1}`;

/** What a leading `cd` stage asks for: its directory, or why it cannot be honoured. */
function cdTarget(s: Stage): { dir: string } | { reason: string } {
  const args = s.argv.slice(1);
  if (s.redirects.length > 0) return { reason: `cd with a redirection is not supported (${column(s)})` };
  if (args.length === 0) return { reason: `cd without a directory (the home directory) is not supported: name the directory (${column(s)})` };
  const dir = args[0] as string;
  if (dir === '-') return { reason: `cd - (the previous directory) is not supported: name the directory (${column(s)})` };
  if (dir.startsWith('-')) return { reason: `cd options are not supported: ${dir} (${column(s)})` };
  if (args.length > 1) return { reason: `cd takes one directory, got ${args.length} arguments (${column(s)})` };
  if (dir === '') return { reason: `cd to an empty directory name (${column(s)})` };
  return { dir };
}

/**
 * Splits the leading `cd DIR &&` / `cd DIR;` items off `list`. A leading cd must be a pipeline of its
 * own followed by `&&` or `;` and a command; a cd anywhere else (in a pipeline, after `||`, later in the
 * list) would change a directory only a shell has, so it is refused. Stage numbers count across the
 * whole list, as in the policy's checks.
 */
export function leadingCd(list: CommandList): LeadingCd {
  const dirs: LeadingCd['dirs'] = [];
  let stage = 0;
  let k = 0;
  for (; k < list.items.length; k++) {
    const stages = (list.items[k] as CommandList['items'][number]).pipeline.stages;
    const first = stages[0] as Stage;
    if (stages.length !== 1 || !isCd(first)) break;
    const target = cdTarget(first);
    if ('reason' in target) return refused(list, target.reason, stage);
    const next = list.items[k + 1];
    if (next === undefined) return refused(list, `cd ${target.dir} with nothing after it: the directory does not carry over to later commands; write cd DIR && COMMAND (${column(first)})`, stage);
    if (next.op === '||') return refused(list, `cd DIR || … is not supported (${column(first)})`, stage);
    dirs.push({ dir: target.dir, stage });
    stage++;
  }
  const items = list.items.slice(k).map((item, i) => (i === 0 ? { ...item, op: null } : item));
  for (const item of items) {
    for (const s of item.pipeline.stages) {
      if (isCd(s)) {
        return refused(list, `cd is supported only at the start of a command, as cd DIR && COMMAND (${column(s)})`, stage);
      }
      stage++;
    }
  }
  return { dirs, rest: { items }, refusal: null };
}

function refused(list: CommandList, reason: string, stage: number): LeadingCd {
  return { dirs: [], rest: list, refusal: { reason, stage } };
}
