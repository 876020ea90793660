// Parser throughput on a realistic corpus of command strings, one core, one thread.
// Goal: ≥ 100,000 parsed commands per second.

import { pathToFileURL } from 'node:url';
import { parseCommand } from '../src/command/parser.js';
import { renderCommandList } from '../src/command/render.js';
import type { CommandList } from '../src/command/types.js';
import type { BenchResult } from './types.js';
import { throughput } from './measure.js';

const GOAL = 100_000;

const TEMPLATES = [
  'ls -la {dir}',
  'git status --short',
  'git log --oneline -n {n} -- {file}',
  'git diff HEAD~{n} -- {file} | head -n {n}',
  'git commit -m "{msg}"',
  "grep -rn '{pattern}' {dir} | sort | uniq -c | sort -rn | head -n {n}",
  'cat {file} | wc -l',
  "find {dir} -name '*.{ext}' -type f -newer {file}",
  'npm test && npm run build',
  'npm run lint -- --fix; echo done',
  'docker ps --format \'{{.Names}}\' | grep {word}',
  'tail -n {n} {file} 2>&1 | grep -v DEBUG > {out}',
  'journalctl -u {word}.service --since "1 hour ago" --no-pager',
  'sed -n \'{n},{n}p\' {file}',
  'kubectl get pods -n {word} -o wide',
  'python3 -m pytest -x -q tests/test_{word}.py 2>{out}',
  'make -j{n} all >>{out} 2>&1 || echo "build failed"',
  "curl -fsSL 'https://example.com/{word}?q={n}' -o {out}",
  'tar -czf {out} {dir}',
  'awk -F: \'{print $1}\' {file}',
  'rg --json "{pattern}" {dir} < {file}',
  'ssh-keygen -lf {file}',
  'du -sh {dir} | sort -h',
  'echo "it\'s: {msg}" \'$HOME\' > {out}',
];
const WORDS = ['api', 'worker', 'nginx', 'db', 'cache', 'auth', 'frontend', 'billing'];
const DIRS = ['.', 'src', '/var/log', 'src/command', '"my dir"', '/etc/nginx/sites-enabled', 'test/fleet'];
const FILES = ['README.md', 'src/index.ts', '/var/log/syslog', "'notes 2024.txt'", 'package.json', 'a\\ b.log'];
const MESSAGES = ['fix the parser', 'add tests for quoting', "don't panic", 'release v1.2.3'];
const PATTERNS = ['TODO', 'error: .*', 'function [a-z]+', '^import'];

/** A deterministic corpus of `count` realistic commands. */
export function realisticCorpus(count: number, seed = 1): string[] {
  let state = seed >>> 0;
  const next = (n: number): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % n;
  };
  const pick = (items: readonly string[]): string => items[next(items.length)] ?? '';
  const fill: Record<string, () => string> = {
    dir: () => pick(DIRS),
    file: () => pick(FILES),
    out: () => pick(['out.txt', '/tmp/result.log', "'build log.txt'", 'report.json']),
    n: () => String(1 + next(500)),
    msg: () => pick(MESSAGES),
    word: () => pick(WORDS),
    pattern: () => pick(PATTERNS),
    ext: () => pick(['ts', 'js', 'md', 'json']),
  };
  return Array.from({ length: count }, () =>
    pick(TEMPLATES).replace(/\{(dir|file|out|n|msg|word|pattern|ext)\}/g, (_, key: string) => fill[key]?.() ?? ''),
  );
}


export async function benchParser(): Promise<BenchResult> {
  const corpus = realisticCorpus(10_000);
  const lists: CommandList[] = corpus.map(parseCommand);
  const chars = corpus.reduce((sum, s) => sum + s.length, 0);
  const parsed = throughput(corpus, 1500, parseCommand);
  // Anchor measured alongside: the least any tokenizer must do, a regex split on blanks.
  const split = throughput(corpus, 500, (s) => s.split(/[ \t]+/));
  const rendered = throughput(lists, 500, renderCommandList);
  const meanLength = chars / corpus.length;
  const figures = {
    commands_per_second: Math.round(parsed),
    megabytes_per_second: Number(((parsed * meanLength) / 1e6).toFixed(1)),
    mean_command_length: Number(meanLength.toFixed(1)),
    renders_per_second: Math.round(rendered),
    anchor_split_per_second: Math.round(split),
    split_ratio: Number((parsed / split).toFixed(2)),
    goal_ratio: Number((parsed / GOAL).toFixed(2)),
  };
  const lines = [
    `parser: ${figures.commands_per_second.toLocaleString('en-US')} commands/s ` +
      `(${figures.goal_ratio}× the ${GOAL.toLocaleString('en-US')}/s goal), ${figures.megabytes_per_second} MB/s ` +
      `on ${corpus.length.toLocaleString('en-US')} realistic commands of ${figures.mean_command_length} chars on average`,
    `anchor: naive blank split ${figures.anchor_split_per_second.toLocaleString('en-US')} strings/s ` +
      `(parser runs at ${figures.split_ratio}× its speed)`,
    `render: ${figures.renders_per_second.toLocaleString('en-US')} command lists/s`,
  ];
  return { name: 'parser', figures, lines };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchParser();
  for (const line of result.lines) console.log(line);
}
