// `remux code start --agent claude` installs Claude Code hooks that reach remux from inside the real
// srt sandbox: real tmux, bubblewrap and sandbox-runtime's proxy, a fake `claude` on PATH
// (fixtures/fake-claude.mjs) that runs its hooks as Claude Code does, approvals answered through the
// store the daemon and CLI share. Also the endpoint's refusals: another session's id, a wrong token,
// anything that is not a hook call, a flood; and what the sandbox cannot see or open.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serveHookEndpoint } from '../../src/agents/hook-endpoint.js';
import { Withdrawal } from '../../src/notify/approvals.js';
import { remux } from '../support/cli.js';
import { claudeBed, type AgentPane } from '../support/claude-bed.js';
import { httpRecorder } from '../support/http-recorder.js';
import { until } from '../support/until.js';

const POLICY = `policies:
  agent:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: [ls] }
      - { operation: list_directory, resource: /** }
      - { operation: write_stdout, resource: null }
      - { operation: execute_binary, effect: deny, resource: rm, reason: agents never delete files }
`;

describe('remux code start --agent claude: hooks through the sandbox', { timeout: 90_000 }, () => {
  const bed = claudeBed('hooks');
  const { store, start, send, pane, pending } = bed;
  const config = (timeout: number): void => writeFileSync(join(bed.home, 'config.yaml'), `default_policy: agent\napprovals:\n  timeout_seconds: ${timeout}\n`);

  before(() => {
    writeFileSync(join(bed.home, 'policies.yaml'), POLICY);
    config(20);
  });
  after(() => bed.close());

  it('approve → allow, deny → deny, a policy deny on PreToolUse; expiry leaves the dialog; other sessions are refused', async () => {
    const a = await start();
    assert.match(pane(a), /FAKE-CLAUDE ready hooks=Notification,PermissionRequest,PreToolUse sandbox=1/);
    // Every hook runs the standalone hook client, not the whole CLI: Claude Code waits for it before each Bash command.
    const settings = JSON.parse(readFileSync(join(bed.home, 'agents', 'hooks', a.id, 'settings.json'), 'utf8')) as { hooks: Record<string, Array<{ hooks: Array<{ command: string }> }>> };
    const commands = Object.values(settings.hooks).flatMap((entries) => entries.flatMap((e) => e.hooks.map((h) => h.command)));
    assert.equal(commands.length, 3);
    for (const command of commands) assert.match(command, new RegExp(`^${process.execPath} \\S*/dist/src/hook\\.cjs code hook --session ${a.id}$`));

    const approving = send(a, 'perm npm publish', 1);
    const asked = await pending(/npm publish/);
    assert.equal(asked.what, 'Bash: npm publish');
    assert.equal(asked.principal, `agent:${a.id}`);
    store.answer(asked.id, 'approve', { by: 'alice', via: 'test' });
    assert.match(await approving, /HOOK exit=0 out=\{"hookSpecificOutput":\{"hookEventName":"PermissionRequest","decision":\{"behavior":"allow"\}\}\}/);

    const denying = send(a, 'perm git push --force', 1);
    store.answer((await pending(/git push/)).id, 'deny', { by: 'bob', via: 'test' });
    assert.match(await denying, /HOOK exit=0 out=\{"hookSpecificOutput":\{"hookEventName":"PermissionRequest","decision":\{"behavior":"deny","message":"denied by bob through remux"\}\}\}/);

    assert.match(await send(a, 'pre ls'), /HOOK exit=0 out=\(none\)/);
    assert.match(await send(a, 'pre rm -rf node_modules'), /"permissionDecision":"deny","permissionDecisionReason":"remux policy agent: [^"]*agents never delete files/);

    // From inside the sandbox: no other session's id, no other path or method, no unix socket.
    assert.match(await send(a, 'raw someone-else POST /hook'), /RAW 403/);
    assert.match(await send(a, 'raw ' + a.id + ' GET /hook'), /RAW 405/);
    assert.match(await send(a, 'raw ' + a.id + ' POST /api/approvals/x/answer'), /RAW 404/);
    assert.match(await send(a, 'unix'), /UNIX EPERM/);
    assert.match(await send(a, `read ${join(bed.home, 'approvals.key')}`), /READ denied/);
    // Its own hook directory is readable, never writable: the agent cannot rewrite its hooks away.
    assert.match(await send(a, `write ${join(bed.home, 'agents', 'hooks', a.id, 'settings.json')}`), /WRITE denied (EROFS|EACCES|EPERM)/);

    // A second session (its approvals expire in 1 s): the dialog stays; it sees neither A's token nor A's endpoint.
    config(1);
    const b = await start();
    const silent = await send(b, 'perm make release', 2);
    assert.match(silent, /HOOK exit=0 out=\(none\)/);
    assert.match(silent, /DIALOG Do you want to run make release\?/);
    assert.equal(store.list({ all: true }).find((x) => x.what.includes('make release'))?.status, 'expired');
    assert.match(await send(b, `read ${join(bed.home, 'agents', 'hooks', a.id, 'token')}`), /READ denied ENOENT/);
    assert.match(await send(b, `raw ${a.id} POST /hook`), /RAW 403/);
    assert.equal(store.list({ all: true }).some((x) => x.what.includes('forged')), false, 'no refused call became an approval');
  });

  for (const [signal, sandbox] of [['SIGKILL', 'srt'], ['SIGKILL', 'none'], ['SIGHUP', 'srt']] as const) {
    it(`a hook client ended by ${signal} while it waits (sandbox ${sandbox}) withdraws its question`, async () => {
      config(120);
      const s = await start('--sandbox', sandbox);
      const waiting = send(s, `perm make ${signal}-${sandbox}`, 2);
      const asked = await pending(new RegExp(`make ${signal}-${sandbox}`));
      const hooks = hookClients(s.id);
      assert.equal(hooks.length, 1, 'one hook client waits');
      process.kill(hooks[0]!, signal);
      assert.match(await waiting, /HOOK exit=\d+ out=\(none\)/);
      const withdrawn = await until('its question withdrawn', () => (store.get(asked.id)?.status === 'pending' ? undefined : store.get(asked.id)), 15_000);
      assert.deepEqual([withdrawn?.status, withdrawn?.why], ['cancelled', "the agent's hook stopped waiting for it (interrupted, or killed at Claude Code's hook timeout)"]);
    });
  }

  it('--sandbox none: the hook reaches the endpoint on its socket directly', async () => {
    config(20);
    const c = await start('--sandbox', 'none');
    assert.match(pane(c), /FAKE-CLAUDE ready hooks=Notification,PermissionRequest,PreToolUse sandbox=none/);
    const approving = send(c, 'perm make deploy');
    store.answer((await pending(/make deploy/)).id, 'approve', { by: 'carol', via: 'test' });
    assert.match(await approving, /"decision":\{"behavior":"allow"\}/);
    assert.match(await send(c, 'pre ls'), /HOOK exit=0 out=\(none\)/, 'allowed by the policy: no output, Claude Code decides');
  });

  it("a running session's questions go to the channels config.yaml names now: none to one taken out since its start", async () => {
    const old = httpRecorder();
    const now = httpRecorder();
    await old.listen();
    await now.listen();
    const channel = (url: string): void =>
      writeFileSync(join(bed.home, 'config.yaml'), `default_policy: agent\napprovals:\n  timeout_seconds: 20\nnotify:\n  channels:\n    - { type: webhook, url: "${url}/hook", allow_internal: true }\n`);
    try {
      channel(old.base());
      const s = await start('--sandbox', 'none');
      // Say its topic leaked: taken out of config.yaml, it must not get the next question and its answer links.
      channel(now.base());
      const asking = send(s, 'perm make rotate');
      const asked = await pending(/make rotate/);
      await until('the question on the channel config.yaml names now', () => now.requests.length === 1);
      assert.match(now.requests[0]?.body ?? '', /make rotate/);
      assert.equal(old.requests.length, 0, 'nothing on the channel taken out');
      store.answer(asked.id, 'deny', { by: 'dave', via: 'test' });
      assert.match(await asking, /"behavior":"deny"/);
    } finally {
      config(20);
      await old.close();
      await now.close();
    }
  });
});

describe("remux code start --agent claude: the agent cannot rewrite Claude Code's settings (remux's hooks off, its permissions widened)", { timeout: 90_000 }, () => {
  const bed = claudeBed('settings');
  // A $HOME of its own: what is written there when the sandbox fails to keep it read-only is not anyone's.
  const home = mkdtempSync(join(tmpdir(), 'remux-claude-home-'));
  bed.env.HOME = home;
  after(() => {
    bed.close();
    rmSync(home, { recursive: true, force: true });
  });

  it("keeps ~/.claude.json, ~/.claude/settings.json, the workspace's .claude/settings.json and settings.local.json and what ~/.claude's next start runs read-only, there or not", async () => {
    const project = join(bed.repo, '.claude');
    mkdirSync(project);
    writeFileSync(join(project, 'settings.json'), '{"permissions":{"ask":["Bash(git push:*)"]}}\n');
    // A plugin the user installed: its hooks run at the next start of claude, sandboxed or not.
    mkdirSync(join(home, '.claude', 'plugins', 'p1', 'hooks'), { recursive: true });
    writeFileSync(join(home, '.claude', 'plugins', 'p1', 'hooks', 'hooks.json'), '{}\n');
    const s = await bed.start();
    const readOnly = [
      join(project, 'settings.local.json'),
      join(project, 'settings.json'),
      join(home, '.claude', 'settings.json'),
      // Its mcpServers are commands the next `claude` starts.
      join(home, '.claude.json'),
      join(home, '.claude', 'plugins', 'p1', 'hooks', 'hooks.json'),
      join(home, '.claude', 'plugins', 'p2.json'),
      join(home, '.claude', 'hooks', 'pre-tool.sh'),
      join(home, '.claude', 'commands', 'deploy.md'),
      join(home, '.claude', 'agents', 'helper.md'),
      join(home, '.claude', 'skills', 'SKILL.md'),
    ];
    for (const file of readOnly) assert.match(await bed.send(s, `write ${file}`), /WRITE denied (EROFS|EACCES|EPERM)/, file);
    // ~/.claude.json and ~/.claude/settings.json were made when missing, so that the sandbox binds files of Claude Code's own there.
    assert.equal(readFileSync(join(home, '.claude', 'settings.json'), 'utf8'), '{}\n');
    assert.equal(readFileSync(join(home, '.claude.json'), 'utf8'), '{}\n');
    assert.equal(readFileSync(join(home, '.claude', 'plugins', 'p1', 'hooks', 'hooks.json'), 'utf8'), '{}\n');
    for (const dir of ['hooks', 'commands', 'agents', 'skills']) assert.deepEqual(readdirSync(join(home, '.claude', dir)), [], dir);
    // The rest of its state and of the workspace stays writable.
    assert.match(await bed.send(s, `write ${join(home, '.claude', 'history.jsonl')}`), /WRITE ok/);
    assert.match(await bed.send(s, `write ${join(bed.repo, 'notes.json')}`), /WRITE ok/);
    assert.equal(readFileSync(join(project, 'settings.json'), 'utf8'), '{"permissions":{"ask":["Bash(git push:*)"]}}\n');
    assert.equal((await remux(['code', 'kill', s.id, '-f'], { env: bed.env, via: 'node' })).code, 0);
    // The sandbox's stand-in for the file that was not there goes with it.
    await until('the stand-in removed', () => !existsSync(join(project, 'settings.local.json')));
  });

  it('keeps the scripts the settings run (the status line here) read-only: rewritten, they would run at the next start of claude', async () => {
    const script = join(home, '.claude', 'statusline.sh');
    writeFileSync(script, '#!/bin/sh\necho ok\n');
    writeFileSync(join(home, '.claude', 'settings.json'), JSON.stringify({ statusLine: { type: 'command', command: '~/.claude/statusline.sh' } }));
    const s = await bed.start();
    assert.match(await bed.send(s, `write ${script}`), /WRITE denied (EROFS|EACCES|EPERM)/);
    assert.match(await bed.send(s, `write ${join(home, '.claude', 'history.jsonl')}`), /WRITE ok/);
    assert.equal(readFileSync(script, 'utf8'), '#!/bin/sh\necho ok\n');
    assert.equal((await remux(['code', 'kill', s.id, '-f'], { env: bed.env, via: 'node' })).code, 0);
  });

  it("keeps what the next claude loads from the workspace's .claude (hooks, skills, commands, agents, output styles), .mcp.json and ~/.claude's CLAUDE.md and output styles read-only, there or not; the workspace's CLAUDE.md stays the project's", async () => {
    const project = join(bed.repo, '.claude');
    rmSync(project, { recursive: true, force: true });
    mkdirSync(join(project, 'skills', 'review'), { recursive: true });
    writeFileSync(join(project, 'skills', 'review', 'SKILL.md'), 'review carefully\n');
    const s = await bed.start();
    const readOnly = [
      join(project, 'skills', 'review', 'SKILL.md'),
      // Not there: neither they nor the directories that would hold them can be made.
      join(project, 'hooks', 'pre.sh'),
      join(project, 'commands', 'ship.md'),
      join(project, 'agents', 'helper.md'),
      join(project, 'output-styles', 'terse.md'),
      join(bed.repo, '.mcp.json'),
      join(home, '.claude', 'CLAUDE.md'),
      join(home, '.claude', 'output-styles', 'terse.md'),
    ];
    for (const file of readOnly) assert.match(await bed.send(s, `mkwrite ${file}`), /WRITE denied (EROFS|EACCES|EPERM|EEXIST|ENOTDIR)/, file);
    assert.equal(readFileSync(join(project, 'skills', 'review', 'SKILL.md'), 'utf8'), 'review carefully\n');
    // The instructions under $HOME were made (empty) when missing, as the code directories are.
    assert.equal(readFileSync(join(home, '.claude', 'CLAUDE.md'), 'utf8'), '');
    // The project's own instructions and the rest of its .claude stay the agent's to write.
    assert.match(await bed.send(s, `mkwrite ${join(bed.repo, 'CLAUDE.md')}`), /WRITE ok/);
    assert.match(await bed.send(s, `mkwrite ${join(project, 'notes', 'plan.md')}`), /WRITE ok/);
    assert.equal((await remux(['code', 'kill', s.id, '-f'], { env: bed.env, via: 'node' })).code, 0);
    // Nothing was made in the user's repository for the directories that were not there.
    await until('the stand-ins removed', () => readdirSync(project).sort().join(',') === 'notes,skills');
  });
});

describe('remux code start --agent codex / gemini: the agent cannot rewrite what their next start runs', { timeout: 90_000 }, () => {
  const bed = claudeBed('agent-settings');
  const home = mkdtempSync(join(tmpdir(), 'remux-codex-home-'));
  bed.env.HOME = home;
  after(() => {
    bed.close();
    rmSync(home, { recursive: true, force: true });
  });

  /** The fake, started as AGENT (a stand-in of that name on PATH: its own settings, no hooks). */
  async function startAs(agent: string): Promise<AgentPane> {
    writeFileSync(join(bed.bin, agent), readFileSync(join(bed.bin, 'claude')), { mode: 0o755 });
    const r = await remux(['code', 'start', bed.repo, '--no-attach', '--agent', agent], { env: bed.env, via: 'node' });
    assert.equal(r.code, 0, r.stderr);
    const s = { id: r.stdout.split(' ')[0] as string, tmux: '' };
    s.tmux = `agent-${s.id}`;
    await until(`fake ${agent}`, () => bed.pane(s).includes('FAKE-CLAUDE ready'));
    return s;
  }

  it("keeps ~/.codex/config.toml (made empty when missing), the workspace's .codex/config.toml and the programs their MCP servers and notify name read-only", async () => {
    mkdirSync(join(home, 'bin'), { recursive: true });
    mkdirSync(join(bed.repo, 'tools'));
    writeFileSync(join(home, 'bin', 'notify.sh'), '#!/bin/sh\n');
    writeFileSync(join(bed.repo, 'tools', 'mcp.sh'), '#!/bin/sh\n');
    mkdirSync(join(bed.repo, '.codex'));
    writeFileSync(join(bed.repo, '.codex', 'config.toml'), `notify = ["~/bin/notify.sh"]\n[mcp_servers.local]\ncommand = "${join(bed.repo, 'tools', 'mcp.sh')}"\n`);
    const s = await startAs('codex');
    for (const file of [join(home, '.codex', 'config.toml'), join(bed.repo, '.codex', 'config.toml'), join(home, 'bin', 'notify.sh'), join(bed.repo, 'tools', 'mcp.sh')]) {
      assert.match(await bed.send(s, `write ${file}`), /WRITE denied (EROFS|EACCES|EPERM)/, file);
    }
    assert.equal(readFileSync(join(home, '.codex', 'config.toml'), 'utf8'), '');
    assert.equal(readFileSync(join(bed.repo, 'tools', 'mcp.sh'), 'utf8'), '#!/bin/sh\n');
    // The rest of its state and of the workspace stays writable.
    assert.match(await bed.send(s, `write ${join(home, '.codex', 'history.jsonl')}`), /WRITE ok/);
    assert.match(await bed.send(s, `write ${join(bed.repo, 'tools', 'other.sh')}`), /WRITE ok/);
    assert.equal((await remux(['code', 'kill', s.id, '-f'], { env: bed.env, via: 'node' })).code, 0);
  });

  it("keeps ~/.gemini/settings.json (made as {} when missing), the workspace's .gemini/settings.json and the programs their MCP servers and hooks name read-only", async () => {
    mkdirSync(join(bed.repo, '.gemini'));
    mkdirSync(join(bed.repo, 'tools'), { recursive: true });
    writeFileSync(join(bed.repo, 'tools', 'gemini-mcp.sh'), '#!/bin/sh\n');
    writeFileSync(join(bed.repo, '.gemini', 'settings.json'), JSON.stringify({ mcpServers: { local: { command: 'sh', args: ['$GEMINI_PROJECT_DIR/tools/gemini-mcp.sh'] } } }));
    const s = await startAs('gemini');
    for (const file of [join(home, '.gemini', 'settings.json'), join(bed.repo, '.gemini', 'settings.json'), join(bed.repo, 'tools', 'gemini-mcp.sh')]) {
      assert.match(await bed.send(s, `write ${file}`), /WRITE denied (EROFS|EACCES|EPERM)/, file);
    }
    assert.equal(readFileSync(join(home, '.gemini', 'settings.json'), 'utf8'), '{}\n');
    assert.match(await bed.send(s, `write ${join(home, '.gemini', 'history.json')}`), /WRITE ok/);
    assert.equal((await remux(['code', 'kill', s.id, '-f'], { env: bed.env, via: 'node' })).code, 0);
  });

  /** Each file cannot be made or rewritten inside; the workspace's own instructions can; nothing is left in the workspace. */
  async function checkReadOnly(agent: string, readOnly: string[], ownInstructions: string): Promise<void> {
    const before = readdirSync(bed.repo).sort();
    const s = await startAs(agent);
    // ENOENT: a directory below a read-only one could not be made.
    for (const file of readOnly) assert.match(await bed.send(s, `mkwrite ${file}`), /WRITE denied (EROFS|EACCES|EPERM|EEXIST|ENOTDIR|ENOENT)/, file);
    assert.match(await bed.send(s, `mkwrite ${join(bed.repo, ownInstructions)}`), /WRITE ok/);
    assert.equal((await remux(['code', 'kill', s.id, '-f'], { env: bed.env, via: 'node' })).code, 0);
    // What the fake writes ({}) landed nowhere.
    for (const file of readOnly) assert.ok(!existsSync(file) || readFileSync(file, 'utf8') !== '{}', file);
    // The stand-ins for what was not there go with the agent.
    await until('the stand-ins removed', () => readdirSync(bed.repo).sort().join(',') === [...new Set([...before, ownInstructions])].sort().join(','));
  }

  it("keeps ~/.codex's AGENTS.md, AGENTS.override.md (made empty), hooks.json, prompts, skills, rules, agents and plugins and the workspace's .codex hooks.json, rules and agents and .agents/skills read-only; the workspace's AGENTS.md stays the project's", async () => {
    const codex = join(home, '.codex');
    await checkReadOnly('codex', [
      join(codex, 'AGENTS.md'),
      join(codex, 'AGENTS.override.md'),
      join(codex, 'hooks.json'),
      join(codex, 'prompts', 'deploy.md'),
      join(codex, 'skills', 'review', 'SKILL.md'),
      join(codex, 'rules', 'default.rules'),
      join(codex, 'agents', 'helper.toml'),
      join(codex, 'plugins', 'cache', 'm', 'p', '1', '.codex-plugin', 'plugin.json'),
      join(bed.repo, '.codex', 'hooks.json'),
      join(bed.repo, '.codex', 'rules', 'allow.rules'),
      join(bed.repo, '.codex', 'agents', 'helper.toml'),
      join(bed.repo, '.agents', 'skills', 'review', 'SKILL.md'),
    ], 'AGENTS.md');
    for (const file of ['AGENTS.md', 'AGENTS.override.md']) assert.equal(readFileSync(join(codex, file), 'utf8'), '', file);
    assert.equal(readFileSync(join(codex, 'hooks.json'), 'utf8'), '{}\n');
    assert.deepEqual(readdirSync(join(bed.repo, '.codex')), ['config.toml']);
  });

  it("keeps the workspace's .codex read-only as a whole (its skills, the scripts its hooks run, whatever else codex reads there), and one that is not there cannot be made", async () => {
    const folder = join(bed.repo, '.codex');
    await checkReadOnly('codex', [join(folder, 'skills', 'review', 'SKILL.md'), join(folder, 'hooks', 'pre.sh')], 'AGENTS.md');
    assert.deepEqual(readdirSync(folder), ['config.toml']);
    rmSync(folder, { recursive: true });
    // Not there: neither it nor what codex would read in it can be made (checkReadOnly: its stand-in goes with the agent).
    await checkReadOnly('codex', [join(folder, 'config.toml'), join(folder, 'skills', 'review', 'SKILL.md')], 'AGENTS.md');
    assert.ok(!existsSync(folder));
  });

  it("keeps ~/.gemini's GEMINI.md (made empty) and the context files its settings name, extensions, commands, skills, agents and policies and the workspace's .gemini ones and .agents/skills read-only; the workspace's GEMINI.md stays the project's", async () => {
    const gemini = join(home, '.gemini');
    writeFileSync(join(gemini, 'settings.json'), JSON.stringify({ context: { fileName: ['AGENTS.md', 'GEMINI.md'] } }));
    const dirs = (root: string): string[] => [
      join(root, 'extensions', 'e', 'gemini-extension.json'),
      join(root, 'commands', 'ship.toml'),
      join(root, 'skills', 'review', 'SKILL.md'),
      join(root, 'agents', 'helper.md'),
      join(root, 'policies', 'allow.toml'),
    ];
    await checkReadOnly('gemini', [join(gemini, 'GEMINI.md'), join(gemini, 'AGENTS.md'), ...dirs(gemini), ...dirs(join(bed.repo, '.gemini')), join(bed.repo, '.agents', 'skills', 'review', 'SKILL.md')], 'GEMINI.md');
    assert.equal(readFileSync(join(gemini, 'GEMINI.md'), 'utf8'), '');
    await until('the stand-in for ~/.gemini/AGENTS.md removed', () => !existsSync(join(gemini, 'AGENTS.md')));
    assert.deepEqual(readdirSync(join(bed.repo, '.gemini')), ['settings.json']);
  });
});

/** The pids of the hook clients (hook.cjs) of agent session `id` running now. */
function hookClients(id: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        return argv.some((a) => a.endsWith('/hook.cjs')) && argv.includes(id);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('hook endpoint (direct)', () => {
  it('refuses a wrong token, a flood beyond 8 waiting hooks, oversized and bad input; a hung-up hook withdraws its question', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'remux-hook-ep-'));
    const withdrawn: string[] = [];
    const reasons: unknown[] = [];
    let waitingNow = 0;
    const endpoint = await serveHookEndpoint({
      session: 's1',
      dir: join(dir, 'h'),
      answer: (input, signal) =>
        new Promise((resolve) => {
          if (input.tool_input?.command === 'quick') return resolve(null);
          waitingNow++;
          signal.addEventListener('abort', () => {
            withdrawn.push(String(input.tool_input?.command));
            reasons.push(signal.reason);
            resolve(null);
          });
        }),
    });
    const token = readFileSync(join(dir, 'h', 'token'), 'utf8');
    const call = (body: string, headers: Record<string, string>): { done: Promise<number>; abort(): void } => {
      const req = request({ socketPath: endpoint.socket, path: '/hook', method: 'POST', headers });
      const done = new Promise<number>((resolve) => {
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', () => resolve(-1));
      });
      req.end(body);
      return { done, abort: () => req.destroy() };
    };
    const input = (command: string): string => JSON.stringify({ session_id: 'c', cwd: '/w', hook_event_name: 'PermissionRequest', tool_name: 'Bash', tool_input: { command } });
    const ok = { authorization: `Bearer ${token}`, 'x-remux-session': 's1' };
    try {
      assert.equal(await call(input('quick'), ok).done, 200);
      // Its last character changed (to another one: a token may end in 0).
      const wrong = `${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}`;
      assert.equal(await call(input('quick'), { ...ok, authorization: `Bearer ${wrong}` }).done, 401);
      assert.equal(await call(input('quick'), { 'x-remux-session': 's1' }).done, 401);
      assert.equal(await call('{"hook_event_name":"Stop"}', ok).done, 400);
      assert.equal(await call(input('x'.repeat(1024 * 1024)), ok).done, 413);
      const waiting = Array.from({ length: 8 }, (_, i) => call(input(`wait-${i}`), ok));
      await until('8 waiting hooks', () => waitingNow === 8);
      assert.equal(await call(input('quick'), ok).done, 429, 'the ninth waiting hook is refused');
      for (const w of waiting) w.abort();
      await until('every question withdrawn', () => withdrawn.length === 8);
      // Saying why: the approval shows it, and so do the audit and the phone (notify/service.ts).
      for (const reason of reasons) assert.equal(reason instanceof Withdrawal && reason.why, "the agent's hook stopped waiting for it (interrupted, or killed at Claude Code's hook timeout)");
      assert.equal(await call(input('quick'), ok).done, 200, 'room again once they are gone');
    } finally {
      await endpoint.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("closing leaves the directory alone once another supervisor (a restart) has taken it over", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'remux-hook-ep-'));
    try {
      const old = await serveHookEndpoint({ session: 's1', dir: join(dir, 'h'), answer: () => Promise.resolve(null) });
      const next = await serveHookEndpoint({ session: 's1', dir: join(dir, 'h'), answer: () => Promise.resolve(null) });
      try {
        await old.close();
        assert.equal(existsSync(next.socket), true, "the next supervisor's socket survives");
        assert.equal(existsSync(join(dir, 'h', 'token')), true, "and its token");
      } finally {
        await next.close();
      }
      assert.equal(existsSync(join(dir, 'h')), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
