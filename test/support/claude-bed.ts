// Where tests of `remux code start --agent claude` run the fake Claude Code (test/agents/fixtures/
// fake-claude.mjs, as `claude` on PATH): a remux home, a tmux socket of their own, the approvals store the
// CLI and the daemon share, and the fake's line protocol: a tagged line typed into its pane, the lines it
// answers with that tag read back.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApprovalStore, type Approval } from '../../src/notify/approvals.js';
import { REPO_ROOT, remux, tempHome } from './cli.js';
import { until } from './until.js';
import { endTmuxServer } from './tmux.js';

export interface AgentPane {
  id: string;
  /** The session's tmux session name. */
  tmux: string;
}

export interface ClaudeBed {
  home: string;
  env: Record<string, string>;
  /** On PATH first: `claude` is the fake; a test may add more stand-ins. */
  bin: string;
  /** The workspace sessions start in. */
  repo: string;
  store: ApprovalStore;
  tmux(...args: string[]): string;
  /** `remux code start REPO --no-attach --agent claude ARGS…`, once the fake says it is ready. */
  start(...args: string[]): Promise<AgentPane>;
  /** The pane with its whole history. */
  pane(s: AgentPane): string;
  /** Types `TAG line` and waits for `lines` lines of answer with that tag. */
  send(s: AgentPane, line: string, lines?: number, ms?: number): Promise<string>;
  /** The pending approval whose text matches, once there. */
  pending(what: RegExp): Promise<Approval>;
  close(): void;
}

export function claudeBed(name: string): ClaudeBed {
  const t = tempHome();
  const socket = `remux-test-${name}-${process.pid}`;
  const work = mkdtempSync(join(tmpdir(), `remux-${name}-`));
  const bin = join(work, 'bin');
  const repo = join(work, 'repo');
  mkdirSync(bin);
  mkdirSync(repo);
  writeFileSync(join(bin, 'claude'), `#!/bin/sh\nexec ${process.execPath} ${join(REPO_ROOT, 'test', 'agents', 'fixtures', 'fake-claude.mjs')} "$@"\n`, { mode: 0o755 });
  const env = { ...t.env, REMUX_TMUX_SOCKET: socket, PATH: `${bin}:${process.env.PATH}` };
  const store = ApprovalStore.open(join(t.home, 'approvals.db'), join(t.home, 'approvals.key'));
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  const pane = (s: AgentPane): string => tmux('capture-pane', '-p', '-J', '-S', '-', '-t', `=${s.tmux}:`);
  let n = 0;
  return {
    home: t.home,
    env,
    bin,
    repo,
    store,
    tmux,
    pane,
    async start(...args) {
      const r = await remux(['code', 'start', repo, '--no-attach', '--agent', 'claude', ...args], { env, via: 'node' });
      assert.equal(r.code, 0, r.stderr);
      const id = r.stdout.split(' ')[0] as string;
      const s = { id, tmux: `agent-${id}` };
      await until('fake claude', () => pane(s).includes('FAKE-CLAUDE ready'));
      return s;
    },
    async send(s, line, lines = 1, ms = 15_000) {
      const tag = `t${++n}`;
      tmux('send-keys', '-t', `=${s.tmux}:`, '-l', `${tag} ${line}`);
      tmux('send-keys', '-t', `=${s.tmux}:`, 'Enter');
      // The terminal echoes the line typed: the answers are the other lines with the tag.
      const mine = (): string[] => pane(s).split('\n').filter((l) => l.startsWith(`${tag} `) && l.trimEnd() !== `${tag} ${line}`);
      await until(`the answer to ${line}`, () => mine().length >= lines, ms);
      return mine().join('\n');
    },
    pending: (what) => until(`an approval for ${what}`, () => store.list().find((a) => what.test(a.what))),
    close() {
      endTmuxServer(socket);
      store.close();
      t.remove();
      rmSync(work, { recursive: true, force: true });
    },
  };
}
