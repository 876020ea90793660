// Differential test against real bash: for every generated string the parser accepts, bash must see the
// same stages with the same argv, and must create exactly the files the parser reports as write targets.
//
// Safety: bash only ever runs strings the parser accepted (no expansions, no `/` anywhere), with
// `__argv` inserted as the command of every stage the parser found, in a fresh temp dir, PATH pointing to
// an empty directory and every builtin except printf disabled. If a stage boundary were wrong, bash would
// reach a "command not found" handler that reports it, not run a program.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommand } from '../../src/command/parser.js';
import { ParseError } from '../../src/command/types.js';
import type { CommandList } from '../../src/command/types.js';
import { INPUT_FILES, generateCorpus } from './support/corpus.js';
import { findProgram, run } from './support/shells.js';

const CORPUS_SIZE = 12_000;
const SEED = 0x5eed_2024;
const BATCHES = 4;

const PRELUDE = String.raw`
__argv() { printf '%s\0' R "$#" "$@" >&3; }
__argvF() { ! printf '%s\0' R "$#" "$@" >&3; }
__end() { printf '%s\0' E "$1" >&3; }
command_not_found_handle() { printf '%s\0' CNF "$1" >&3; }
for __b in $(compgen -b); do [[ $__b == printf || $__b == enable ]] || enable -n "$__b"; done
enable -n enable
`;

interface Accepted {
  index: number;
  source: string;
  list: CommandList;
}

/**
 * The source with `__argv INDEX:STAGE ` inserted at the start of every stage. A pipeline followed by `||`
 * ends with `__argvF`, which fails, so that bash runs every pipeline of the list.
 */
function instrument(a: Accepted): string {
  const { items } = a.list;
  let out = '';
  let from = 0;
  let j = 0;
  items.forEach((item, k) => {
    const fails = items[k + 1]?.op === '||';
    item.pipeline.stages.forEach((stage, m) => {
      const name = fails && m === item.pipeline.stages.length - 1 ? '__argvF' : '__argv';
      out += `${a.source.slice(from, stage.pos)}${name} ${a.index}:${j++} `;
      from = stage.pos;
    });
  });
  return out + a.source.slice(from);
}

function pathsOf(list: CommandList, kind: 'read' | 'write'): string[] {
  return list.items.flatMap((item) =>
    item.pipeline.stages.flatMap((stage) => stage.redirects.flatMap((r) => (r.kind === kind ? [r.path] : []))),
  );
}

interface Records {
  argv: Map<string, string[]>;
  ended: Set<number>;
  notFound: string[];
}

function parseRecords(fd3: Buffer): Records {
  const fields = fd3.toString('utf8').split('\0');
  const records: Records = { argv: new Map(), ended: new Set(), notFound: [] };
  let i = 0;
  const next = (): string => {
    const field = fields[i++];
    if (field === undefined) throw new Error('truncated record stream from bash');
    return field;
  };
  while (i < fields.length - 1) {
    const tag = next();
    if (tag === 'R') {
      const argc = Number(next());
      const [id, ...argv] = Array.from({ length: argc }, next);
      if (id === undefined || records.argv.has(id)) throw new Error(`bad or repeated stage id ${String(id)}`);
      records.argv.set(id, argv);
    } else if (tag === 'E') {
      records.ended.add(Number(next()));
    } else if (tag === 'CNF') {
      records.notFound.push(next());
    } else {
      throw new Error(`unexpected record tag ${JSON.stringify(tag)}`);
    }
  }
  return records;
}

async function runBatch(bash: string, root: string, batch: Accepted[], n: number): Promise<string[]> {
  const dir = join(root, `batch${n}`);
  const emptyBin = join(root, `empty-bin${n}`);
  mkdirSync(dir);
  mkdirSync(emptyBin);
  // Every file a `<` reads must exist, or bash would skip the command; create what the parser reports.
  const inputs = new Set<string>([...INPUT_FILES, ...batch.flatMap((a) => pathsOf(a.list, 'read'))]);
  for (const name of inputs) {
    assert.ok(!name.includes('/') && name !== '.' && name !== '..', `unsafe input name ${JSON.stringify(name)}`);
    writeFileSync(join(dir, name), 'input\n');
  }
  const before = new Set(readdirSync(dir));
  const script = PRELUDE + batch.map((a) => `${instrument(a)}\n__end ${a.index}\n`).join('');
  const scriptPath = join(root, `script${n}.sh`);
  writeFileSync(scriptPath, script);

  const result = await run(bash, ['--norc', '--noprofile', scriptPath], {
    cwd: dir,
    env: { PATH: emptyBin, HOME: dir, LC_ALL: 'C.UTF-8' },
  });
  const records = parseRecords(result.fd3);
  const failures: string[] = [];
  const describe = (a: Accepted): string => `#${a.index} ${JSON.stringify(a.source)}`;
  for (const name of records.notFound) failures.push(`bash ran a command named ${JSON.stringify(name)}`);

  const expectedWrites = new Set<string>();
  for (const a of batch) {
    if (!records.ended.has(a.index)) {
      failures.push(`bash stopped before the end of ${describe(a)}: ${result.stderr.slice(0, 500)}`);
      break;
    }
    a.list.items
      .flatMap((item) => item.pipeline.stages)
      .forEach((stage, j) => {
        const got = records.argv.get(`${a.index}:${j}`);
        if (got === undefined) failures.push(`${describe(a)}: bash did not run stage ${j}`);
        else if (JSON.stringify(got) !== JSON.stringify(stage.argv)) {
          failures.push(`${describe(a)} stage ${j}: parser ${JSON.stringify(stage.argv)}, bash ${JSON.stringify(got)}`);
        }
      });
    const stages = a.list.items.reduce((sum, item) => sum + item.pipeline.stages.length, 0);
    const extra = [...records.argv.keys()].filter((id) => id.startsWith(`${a.index}:`) && Number(id.split(':')[1]) >= stages);
    if (extra.length > 0) failures.push(`${describe(a)}: bash ran unexpected stages ${extra.join(', ')}`);
    for (const path of pathsOf(a.list, 'write')) expectedWrites.add(path);
  }

  const after = new Set(readdirSync(dir));
  for (const path of expectedWrites) {
    if (!after.has(path)) failures.push(`bash did not create write target ${JSON.stringify(path)}`);
  }
  for (const name of after) {
    if (!before.has(name) && !expectedWrites.has(name)) failures.push(`bash created unreported file ${JSON.stringify(name)}`);
  }
  return failures;
}

const bash = findProgram('bash');

test('differential against bash: accepted strings give bash identical argv and write targets', { skip: bash === null && 'bash not installed' }, async (t) => {
  const corpus = generateCorpus(CORPUS_SIZE, SEED);
  const accepted: Accepted[] = [];
  const rejectedBy = new Map<string, number>();
  corpus.forEach((source, index) => {
    try {
      accepted.push({ index, source, list: parseCommand(source) });
    } catch (error) {
      if (!(error instanceof ParseError)) throw error;
      rejectedBy.set(error.construct, (rejectedBy.get(error.construct) ?? 0) + 1);
    }
  });
  for (const a of accepted) assert.ok(!a.source.includes('/'), 'the corpus must not contain / (bash stays in its temp dir)');
  const rejected = corpus.length - accepted.length;
  t.diagnostic(`corpus ${corpus.length}: accepted ${accepted.length}, rejected ${rejected}`);
  const top = [...rejectedBy].sort((a, b) => b[1] - a[1]).slice(0, 12);
  t.diagnostic(`top rejections: ${top.map(([c, k]) => `${c} ×${k}`).join('; ')}`);
  // Both halves must be substantial, or the test checks little.
  assert.ok(accepted.length >= corpus.length * 0.4, `only ${accepted.length} accepted`);
  assert.ok(rejected >= corpus.length * 0.1, `only ${rejected} rejected`);

  const root = mkdtempSync(join(tmpdir(), 'remux-differential-'));
  try {
    const size = Math.ceil(accepted.length / BATCHES);
    const batches = Array.from({ length: BATCHES }, (_, n) => accepted.slice(n * size, (n + 1) * size));
    const failures = (await Promise.all(batches.map((batch, n) => runBatch(bash ?? 'bash', root, batch, n)))).flat();
    assert.deepEqual(failures.slice(0, 25), [], `${failures.length} differences from bash`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
