// `npm run bench`: every benchmark in one run, figures and ratios against the anchors measured alongside.
// Usage: node dist/bench/run.js [name…] [--json]
import { cpus } from 'node:os';
import type { BenchResult } from './types.js';

const BENCHES: Record<string, () => Promise<BenchResult>> = {
  parser: async () => (await import('./parser.js')).benchParser(),
  policy: async () => (await import('./policy.js')).benchPolicy(),
  audit: async () => (await import('./audit.js')).benchAudit(),
  startup: async () => (await import('./startup.js')).benchStartup(),
  ssh: async () => (await import('./ssh.js')).benchSsh(),
  fleet: async () => (await import('./fleet.js')).benchFleet(),
  'daemon-memory': async () => (await import('./fleet.js')).benchDaemonMemory(),
  sandbox: async () => (await import('./sandbox.js')).benchSandbox(),
  sessions: async () => (await import('./sessions.js')).benchSessions(),
  console: async () => (await import('./console.js')).benchConsole(),
  spawn: async () => (await import('./spawn.js')).benchSpawn(),
  approvals: async () => (await import('./approvals.js')).benchApprovals(),
  mcp: async () => (await import('./mcp.js')).benchMcp(),
  agent: async () => (await import('./agent.js')).benchAgent(),
  agents: async () => (await import('./agents.js')).benchAgents(),
  watcher: async () => (await import('./watcher.js')).benchWatcher(),
  runtime: async () => (await import('./runtime.js')).benchRuntime(),
};

const args = process.argv.slice(2);
const json = args.includes('--json');
const names = args.filter((a) => !a.startsWith('--'));
const selected = names.length > 0 ? names : Object.keys(BENCHES);
const unknown = selected.filter((n) => !(n in BENCHES));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${Object.keys(BENCHES).join(', ')}`);
  process.exit(2);
}

const results: BenchResult[] = [];
if (!json) console.log(`remux benchmarks — node ${process.version}, ${cpus().length} cpu(s): ${cpus()[0]?.model ?? 'unknown'}\n`);
for (const name of selected) {
  const result = await BENCHES[name]!();
  results.push(result);
  if (!json) {
    console.log(`## ${result.name}`);
    for (const line of result.lines) console.log(`  ${line}`);
    console.log('');
  }
}
if (json) console.log(JSON.stringify(results, null, 2));
