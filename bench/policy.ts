// Policy decisions per second: evaluate() alone on pre-parsed realistic commands, under the read_only
// template with the local resolver over real paths, one thread. Goal: ≥ 200,000 decisions per second.
// Two breakdowns say where the time goes: the same decisions with an in-memory resolver (no system
// calls), and argv analysis alone.
import { pathToFileURL } from 'node:url';
import { analyzeArgv } from '../src/command/analysis.js';
import { parseCommand } from '../src/command/parser.js';
import { evaluate } from '../src/policy/evaluate.js';
import { parsePolicies } from '../src/policy/load.js';
import { localResolver } from '../src/policy/resolve.js';
import { renderTemplate } from '../src/policy/templates.js';
import type { PathResolver, Policy } from '../src/policy/types.js';
import type { BenchResult } from './types.js';
import { throughput } from './measure.js';

const GOAL = 200_000;

/** What an operator or an agent runs against a log host; about a fifth are denied. */
const CORPUS = [
  'cat /var/log/dpkg.log',
  'tail -n 100 /var/log/syslog',
  'tail -n 50 /var/log/dpkg.log | grep -i install',
  "grep -i error /var/log/dpkg.log | sort | uniq -c | sort -rn | head -n 20",
  'head -n 50 /var/log/apt/history.log',
  'ls -la /var/log',
  'ls /var/log/apt',
  'du -sh /var/log/apt',
  'wc -l /var/log/dpkg.log /var/log/alternatives.log',
  'ps aux | grep node',
  'df -h',
  'uptime',
  'free -m',
  'uname -a',
  'stat /var/log/dpkg.log',
  "find /var/log -name '*.gz' -mtime +7",
  "cut -d ' ' -f 1 /var/log/dpkg.log | sort | uniq",
  'zgrep -h install /var/log/dpkg.log.1.gz',
  'tail -n 20 /tmp/build.log',
  'grep -c warn /var/log/alternatives.log',
  'cat /var/log/../../etc/shadow',
  'cat /etc/passwd',
  'sort -o /etc/passwd /var/log/dpkg.log',
  'grep -f /etc/shadow /var/log/dpkg.log',
  "sh -c 'cat /var/log/dpkg.log'",
];


/** Answers from memory: what evaluate() costs without a single system call. */
function memoryResolver(): PathResolver {
  const programs = new Map<string, string | null>();
  return {
    realpath: (path, cwd) => (path.startsWith('/') ? path : `${cwd}/${path}`),
    which(name) {
      if (!programs.has(name)) programs.set(name, localResolver.which(name));
      return programs.get(name) ?? null;
    },
  };
}

export async function benchPolicy(): Promise<BenchResult> {
  const policy = parsePolicies(renderTemplate('read_only', 'read_only'), 'policies.yaml', {}).get('read_only') as Policy;
  const lists = CORPUS.map(parseCommand);
  const ctx = { cwd: '/var/log', resolver: localResolver };
  const denied = lists.filter((l) => evaluate(policy, l, ctx).effect !== 'allow').length;

  const local = throughput(lists, 1500, (l) => evaluate(policy, l, ctx));
  const memory = memoryResolver();
  const inMemory = throughput(lists, 800, (l) => evaluate(policy, l, { cwd: '/var/log', resolver: memory }));
  const analysis = throughput(lists, 500, (l) => l.items.every((i) => i.pipeline.stages.every((s) => analyzeArgv(s.argv))));

  const usPer = (rate: number): number => Number((1e6 / rate).toFixed(2));
  const figures = {
    decisions_per_second: Math.round(local),
    us_per_decision: usPer(local),
    in_memory_decisions_per_second: Math.round(inMemory),
    analysis_us_per_command: usPer(analysis),
    filesystem_share: Number((1 - local / inMemory).toFixed(2)),
    goal_ratio: Number((local / GOAL).toFixed(2)),
  };
  const lines = [
    `policy: ${figures.decisions_per_second.toLocaleString('en-US')} decisions/s ` +
      `(${figures.goal_ratio}× the ${GOAL.toLocaleString('en-US')}/s goal), ${figures.us_per_decision} µs each, ` +
      `read_only template, local resolver, ${lists.length} commands (${denied} denied)`,
    `breakdown: ${figures.in_memory_decisions_per_second.toLocaleString('en-US')} decisions/s with an in-memory resolver ` +
      `(system calls are ${Math.round(figures.filesystem_share * 100)}% of the time); ` +
      `argv analysis ${figures.analysis_us_per_command} µs per command`,
  ];
  return { name: 'policy', figures, lines };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchPolicy();
  for (const line of result.lines) console.log(line);
}
