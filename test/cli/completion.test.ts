// Shell completion: the script `remux completion bash` prints, loaded in a bare bash and driven as bash
// drives it (COMP_WORDS as bash splits the line, at '=' too, and COMP_CWORD), with the real CLI answering
// from a temporary REMUX_HOME. Then as a user meets it: Tab typed into an interactive bash and zsh in a
// terminal, and fish's own completion (complete -C); a shell that is not installed is skipped.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { spawn as ptySpawn } from 'node-pty';
import { declaredSources } from '../../src/cli/commands/completion.js';
import { registerCommands } from '../../src/cli/commands/index.js';
import { processInvocation } from '../../src/cli/invocation.js';
import { createProgram } from '../../src/cli/program.js';
import { approvalsDbFile, approvalsKeyFile } from '../../src/config/paths.js';
import { ApprovalStore } from '../../src/notify/approvals.js';
import { REPO_ROOT, remux, tempHome } from '../support/cli.js';
import { plantRecordings } from '../support/recordings.js';
import { until } from '../support/until.js';

/** The code cache (launch.cts) of every remux started here, outside REMUX_HOME as the user's ~/.cache is. */
const CACHE = mkdtempSync(join(tmpdir(), 'remux-completion-cache-'));
after(() => rmSync(CACHE, { recursive: true, force: true }));

const HOSTS = `hosts:
  web1:
    address: 10.0.0.5
    labels: { env: prod, role: web }
  db1:
    address: 10.0.0.7
    labels: { env: staging }
`;

const POLICIES = `policies:
  read_only: { capabilities: [] }
  deploy: { capabilities: [] }
`;

const PRINCIPALS = `principals:
  ci-bot: { token_sha256: ${'a'.repeat(64)}, admin: true }
`;

/**
 * Open approvals in `env`'s REMUX_HOME as the approvals service makes them (a policy ask, then an agent
 * prompt with its own options), and one closed of each kind (cancelled, expired); the open ones' ids,
 * newest first.
 */
async function plantApprovals(env: NodeJS.ProcessEnv): Promise<string[]> {
  const store = ApprovalStore.open(approvalsDbFile(env), approvalsKeyFile(env));
  try {
    const policyAsk = store.create({ principal: 'alice', host: 'web1', what: 'run `make release` on web1', reason: 'releases are asked for', source: 'policy:ops', ttlMs: 600_000 });
    await new Promise((r) => setTimeout(r, 5)); // newer by the clock
    const prompt = store.create({
      principal: 'agent:3f2a',
      host: 'localhost',
      what: "answer claude's prompt in agent session web (3f2a): Run make?",
      reason: 'Run make?',
      source: 'the screen of agent session web: claude',
      options: [
        { id: '1', label: 'Yes', effect: 'allow' },
        { id: '2', label: 'No', effect: 'deny' },
      ],
      ttlMs: 600_000,
    });
    store.cancel(store.create({ principal: 'bob', host: 'web1', what: 'withdrawn', reason: 'r', source: 'policy:ops', ttlMs: 600_000 }).id);
    store.create({ principal: 'bob', host: 'web1', what: 'expired', reason: 'r', source: 'policy:ops', ttlMs: 1 });
    await new Promise((r) => setTimeout(r, 5));
    return [prompt.id, policyAsk.id];
  } finally {
    store.close();
  }
}

/** Environment of the shell: remux on the PATH (the launcher), no REMUX_* of the developer's, no $TMUX. */
function shellEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('REMUX_') || name.startsWith('RPIPE_') || name === 'TMUX') delete env[name];
  return { ...env, PATH: `${join(REPO_ROOT, 'bin')}:${process.env.PATH ?? ''}`, XDG_CACHE_HOME: CACHE, ...extra };
}

/**
 * COMPREPLY of the bash script for `words` (COMP_WORDS after `remux`; the last is the word at the
 * cursor), and what bash wrote to stderr, which would land in the user's prompt line.
 */
function bashComplete(words: string[], env: NodeJS.ProcessEnv): { reply: string[]; stderr: string; ms: number } {
  const script = 'source <(remux completion bash); COMP_WORDS=(remux "$@"); COMP_CWORD=$#; _remux; printf "%s\\n" "${COMPREPLY[@]}"';
  const started = performance.now();
  const run = spawnSync('bash', ['--norc', '--noprofile', '-c', script, 'bash', ...words], { env, encoding: 'utf8', timeout: 30_000 });
  const ms = performance.now() - started;
  assert.equal(run.status, 0, run.stderr);
  return { reply: run.stdout.split('\n').filter((l) => l !== ''), stderr: run.stderr, ms };
}

describe('remux completion bash', () => {
  const home = tempHome();
  const scratch = mkdtempSync(join(tmpdir(), 'remux-completion-'));
  // TMUX_TMPDIR: a tmux server of this test's own.
  const env = shellEnv({ ...home.env, TMUX_TMPDIR: scratch });
  const complete = (...words: string[]): string[] => {
    const { reply, stderr } = bashComplete(words, env);
    assert.equal(stderr, '');
    return reply;
  };

  before(() => {
    writeFileSync(join(home.home, 'hosts.yaml'), HOSTS);
    writeFileSync(join(home.home, 'policies.yaml'), POLICIES);
    writeFileSync(join(home.home, 'principals.yaml'), PRINCIPALS);
  });
  after(() => {
    spawnSync('tmux', ['kill-server'], { env, stdio: 'ignore' });
    home.remove();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('subcommands come from the command tree; the hidden helper is not offered', () => {
    const top = complete('');
    for (const group of ['config', 'policy', 'hosts', 'client', 'session', 'daemon', 'audit', 'principal', 'code', 'rpc', 'template', 'completion']) assert.ok(top.includes(group), `${group} in ${top.join(' ')}`);
    assert.ok(!top.includes('__complete'));
    assert.deepEqual(complete('se'), ['session']);
    assert.deepEqual(complete('session', 'a'), ['attach']);
    assert.deepEqual(complete('policy', 'l'), ['list']);
    assert.deepEqual(complete('completion', ''), ['bash', 'zsh', 'fish']);
  });

  test("options are the command's own, with a value option's value skipped", () => {
    assert.deepEqual(complete('client', 'run', '--po'), ['--policy']);
    assert.deepEqual(complete('session', 'attach', 'x', '--host', 'web1', '--re'), ['--read-only']);
    assert.ok(complete('rpc', '--').includes('--tools'));
  });

  test('hosts: names, localhost, all and label selectors from hosts.yaml, as bash splits them at =', () => {
    assert.deepEqual(complete('client', 'run', ''), ['web1', 'db1', 'localhost', 'all', 'env=prod', 'env=staging', 'role=web']);
    assert.deepEqual(complete('client', 'run', 'w'), ['web1']);
    // One host where a command takes one: no selector.
    assert.deepEqual(complete('client', 'read', ''), ['web1', 'db1', 'localhost']);
    // `--host env=pr`: bash's words are env, =, pr, and readline replaces only "pr".
    assert.deepEqual(complete('session', 'ls', '--host', 'env', '=', 'pr'), ['prod']);
    assert.deepEqual(complete('session', 'ls', '--host', 'env', '='), ['prod', 'staging']);
    // `--host=w`: the option's value after its =.
    assert.deepEqual(complete('session', 'ls', '--host', '=', 'w'), ['web1']);
    // A list goes on after its comma, without what it has already.
    assert.deepEqual(complete('rpc', 'web1,'), ['web1,db1', 'web1,localhost', 'web1,env=prod', 'web1,env=staging', 'web1,role=web']);
    assert.deepEqual(complete('hosts', 'remove', ''), ['web1', 'db1']);
  });

  test('policies for --policy and policy show, principals for --principal and principal rm', () => {
    assert.deepEqual(complete('client', 'run', 'web1', '--policy', ''), ['read_only', 'deploy']);
    assert.deepEqual(complete('client', 'run', 'web1', '-p', 'd'), ['deploy']);
    assert.deepEqual(complete('policy', 'show', ''), ['read_only', 'deploy']);
    assert.deepEqual(complete('principal', 'add', 'x', '--policy', 'read_only,'), ['read_only,deploy']);
    assert.deepEqual(complete('principal', 'set', 'ci-bot', '--policy', 'deploy,'), ['deploy,read_only']);
    // A command runs under one policy: no list is offered after a comma (it offered `read_only,deploy`).
    assert.deepEqual(complete('client', 'run', 'web1', '--policy', 'read_only,'), []);
    assert.deepEqual(complete('principal', 'rm', ''), ['ci-bot']);
    assert.deepEqual(complete('audit', 'ls', '--principal', 'c'), ['ci-bot']);
    assert.deepEqual(complete('policy', 'create', 'x', '--template', 'd'), ['developer']);
  });

  test("tmux sessions of this machine's tmux only, agent session IDs, rpc's built-in methods", () => {
    execFileSync('tmux', ['new-session', '-d', '-s', 'build-7'], { env });
    assert.deepEqual(complete('session', 'attach', 'b'), ['build-7']);
    assert.deepEqual(complete('session', 'kill', '--host', 'localhost', ''), ['build-7']);
    // A new session's name is not an existing one.
    assert.deepEqual(complete('session', 'new', 'b'), []);
    // Another host's sessions would need a connection: none is made, nothing is offered.
    assert.deepEqual(complete('session', 'attach', '--host', 'web1', ''), []);

    mkdirSync(join(home.home, 'agents'), { recursive: true });
    writeFileSync(join(home.home, 'agents', 'sessions.json'), JSON.stringify({ sessions: [{ id: '3f2a9c01', name: 'fix-tests', state: 'running' }, { id: '9c1d0e22', name: 'docs', state: 'exited' }] }));
    assert.deepEqual(complete('code', 'attach', '3'), ['3f2a9c01']);
    assert.deepEqual(complete('code', 'rm', '3f2a9c01', ''), ['3f2a9c01', '9c1d0e22']);

    assert.deepEqual(complete('rpc', 'web1', 'FileSystem.read'), ['FileSystem.readText', 'FileSystem.readBytes']);
    assert.ok(complete('rpc', 'web1', 'Apt').includes('Apt.package'));
    rmSync(join(home.home, 'agents'), { recursive: true });
  });

  test("open approvals' IDs (their own options after one), recording IDs, --agent's agents", async () => {
    const [prompt, policyAsk] = (await plantApprovals(env)) as [string, string];
    for (const verb of ['answer', 'approve', 'deny']) assert.deepEqual(complete('approvals', verb, ''), [prompt, policyAsk], `approvals ${verb}: open ones only, newest first`);
    assert.deepEqual(complete('approvals', 'answer', prompt.slice(0, 6), ''), ['1', '2'], "an agent prompt's own options");
    assert.deepEqual(complete('approvals', 'answer', policyAsk, ''), ['approve', 'deny']);
    // What each is, for the shells that show it (zsh, fish): the question.
    const described = await remux(['__complete', '--', 'approvals', 'answer', ''], { env });
    assert.equal(described.stdout, `${prompt}\tanswer claude's prompt in agent session web (3f2a): Run make?\n${policyAsk}\trun \`make release\` on web1\n:0\n`);
    assert.equal((await remux(['__complete', '--', 'approvals', 'answer', prompt, ''], { env })).stdout, '1\tYes\n2\tNo\n:0\n');

    const [older, newer] = plantRecordings(join(home.home, 'recordings'), 2, (i) => ({ host: 'web1', user: 'deploy', session: `build-${i}`, principal: 'local', readOnly: false, actionId: null })) as [string, string];
    assert.deepEqual(complete('session', 'play', ''), [newer, older]);
    assert.deepEqual(complete('session', 'recordings', '--before', older.slice(0, 10)), [newer, older]);
    assert.match((await remux(['__complete', '--', 'session', 'play', older], { env })).stdout, new RegExp(`^${older}\tbuild-0 on web1 \\(deploy\\), \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC\\n`));

    assert.deepEqual(complete('code', 'start', '.', '--agent', ''), ['claude', 'codex', 'gemini', 'aider']);
    assert.deepEqual(complete('code', 'start', '.', '--agent', '=', 'c'), ['claude', 'codex']);
    writeFileSync(join(home.home, 'config.yaml'), 'agents:\n  default_agent: codex\n');
    assert.match((await remux(['__complete', '--', 'code', 'start', '.', '--agent', ''], { env })).stdout, /^claude\ncodex\tthe default \(agents\.default_agent\)\n/);
    rmSync(join(home.home, 'config.yaml'));
  });
});

test("what completes() declares names an argument or option of its command (a renamed one would silently complete nothing)", () => {
  const inv = processInvocation();
  const program = createProgram(inv);
  registerCommands(program, inv);
  const all = (cmd: Command): Command[] => [cmd, ...cmd.commands.flatMap(all)];
  const stale: string[] = [];
  let declared = 0;
  for (const cmd of all(program)) {
    const names = [...cmd.registeredArguments.map((a) => a.name()), ...cmd.options.flatMap((o) => (o.long ? [o.long] : []))];
    for (const key of Object.keys(declaredSources(cmd))) {
      declared++;
      if (!names.includes(key)) stale.push(`${cmd.name()} ${key}`);
    }
  }
  assert.ok(declared >= 15, `${declared} declared`);
  assert.deepEqual(stale, []);
});

test('every option and argument whose parser or help lists its values completes those values, not file names', async () => {
  const { complete } = await import('../../src/cli/completion.js');
  const inv = processInvocation();
  const program = createProgram(inv);
  registerCommands(program, inv);
  const home = tempHome();
  try {
    /** "low | normal | high (…)", "info (all) | warn (…) | error | deny": the words between the bars; a quoted 'CMD' is free text. */
    const listed = (description: string): string[] | undefined => {
      const bars = /^[\w-]+(?: \([^)]*\))?(?: \| (?:[\w-]+|'[^']*')(?: \([^)]*\))?)+/.exec(description)?.[0];
      return bars?.split(' | ').map((w) => w.replace(/ \(.*$/, '')).filter((w) => !w.startsWith("'"));
    };
    const walk = (cmd: Command, path: string[]): Array<{ cmd: Command; path: string[] }> => [{ cmd, path }, ...cmd.commands.flatMap((c) => walk(c, [...path, c.name()]))];
    const wrong: string[] = [];
    let checked = 0;
    for (const { cmd, path } of walk(program, [])) {
      const values = [
        ...cmd.options.filter((o) => o.long !== undefined && !o.isBoolean() && !o.negate).map((o) => ({ words: [...path, o.long!, ''], choices: o.argChoices ?? listed(o.description) })),
        ...cmd.registeredArguments.map((a, i) => ({ words: [...path, ...Array<string>(i).fill('x'), ''], choices: a.argChoices ?? listed(a.description) })),
      ];
      for (const { words, choices } of values) {
        if (choices === undefined) continue;
        checked++;
        const got = await complete(program, words, home.env);
        const offered = got.candidates.map((c) => c.value);
        if (got.files === true || !choices.every((c) => offered.includes(c))) wrong.push(`${words.join(' ')}: ${got.files === true ? 'file names' : offered.join(' ')}, not ${choices.join(' ')}`);
      }
    }
    // notify send --priority, code start --sandbox and audit ls --level completed file names.
    assert.deepEqual(wrong, []);
    assert.ok(checked >= 8, `${checked} checked`);
  } finally {
    home.remove();
  }
});

function installed(shell: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${shell}`], { stdio: 'ignore' }).status === 0;
}

/**
 * What the terminal shows once `line` and Tab (twice: bash lists the candidates at the second) are
 * typed into the interactive shell `argv`, after `setup` ran (it sets PS1: its prompt is waited for);
 * waited for until it matches `expected`.
 */
async function typeTab(argv: string[], env: NodeJS.ProcessEnv, setup: string, line: string, expected: RegExp): Promise<string> {
  const prompt = /PS1='([^']*)'/.exec(setup)![1]!.replace('%%', '%');
  const term = ptySpawn(argv[0]!, argv.slice(1), { cols: 200, rows: 24, cwd: REPO_ROOT, env: env as Record<string, string> });
  let out = '';
  term.onData((d) => (out += d));
  try {
    // The marker is printed by echo, not merely echoed as typed. The line is typed once the prompt after it
    // shows: typed before the line editor set the terminal up, it can be dropped (seen under load: nothing
    // echoed for 30 s).
    term.write(`${setup}; echo READY''-\n`);
    const prompted = (): boolean => {
      const at = out.lastIndexOf('READY-');
      // Terminal controls aside (zsh turns bracketed paste on after its prompt).
      const shown = out.slice(at + 'READY-'.length).replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
      return at >= 0 && shown.trimEnd().endsWith(prompt.trimEnd());
    };
    await until('the shell to be set up and show its prompt', prompted, 30_000);
    await sleep(50);
    const from = out.length;
    term.write(`${line}\t\t`);
    // The bell aside: the second Tab rings it when the first completed the word (how the two are read varies).
    const shown = (): string => out.slice(from).replaceAll('\u0007', '');
    // On failure, what came just before the line was typed too (the shell's state then).
    await until(() => `${line}<Tab> to show ${String(expected)}: ${JSON.stringify(shown())} (before it: ${JSON.stringify(out.slice(Math.max(0, from - 200), from))})`, () => expected.test(shown()), 30_000);
    return shown();
  } finally {
    term.kill('SIGKILL');
  }
}

describe('completion in real shells', () => {
  const home = tempHome();
  const env = shellEnv({ ...home.env, TERM: 'dumb' });
  let approvals: string[] = [];
  before(async () => {
    writeFileSync(join(home.home, 'hosts.yaml'), HOSTS);
    writeFileSync(join(home.home, 'policies.yaml'), POLICIES);
    approvals = await plantApprovals(env);
  });
  after(() => home.remove());

  test('bash: Tab in a terminal completes values after = as readline replaces them', async () => {
    const bash = ['bash', '--norc', '--noprofile', '-i'];
    const setup = "PS1='$ '; source <(remux completion bash)";
    await typeTab(bash, env, setup, 'remux session ls --host env=', /prod +staging/);
    await typeTab(bash, env, setup, 'remux session ls --host env=p', /--host env=prod $/);
    await typeTab(bash, env, setup, 'remux client run db1 --pol', /--policy $/);
    // A value given after the option's =: listed after it, completed right after it (no space after the =),
    // with one space after the whole value.
    await typeTab(bash, env, setup, 'remux client run db1 --policy=', /--policy=\u0007*\r\ndeploy +read_only/);
    await typeTab(bash, env, setup, 'remux client run db1 --policy=d', /--policy=deploy $/);
    await typeTab(bash, env, setup, 'remux code start . --agent=cl', /--agent=claude $/);
    await typeTab(bash, env, setup, `remux approvals answer ${approvals[0]!.slice(0, 6)}`, new RegExp(`answer ${approvals[0]} $`));
    // A value remux knows nothing of: bash's own file names.
    await typeTab(bash, env, setup, `remux policy validate ${home.home}/poli`, /policies\.yaml $/);
  });

  test('zsh: from a directory of $fpath, after compinit', { skip: !installed('zsh') && 'zsh is not installed' }, async () => {
    const zfunc = join(home.home, 'zfunc');
    mkdirSync(zfunc);
    writeFileSync(join(zfunc, '_remux'), (await remux(['completion', 'zsh'])).stdout);
    const zsh = ['zsh', '-f', '-i'];
    const setup = `PS1='%% '; fpath=(${zfunc} $fpath); autoload -Uz compinit && compinit -u -D`;
    await typeTab(zsh, env, setup, 'remux client run web1 --policy ', /deploy +read_only/);
    await typeTab(zsh, env, setup, 'remux session ls --host env=p', /--host env=prod $/);
    await typeTab(zsh, env, setup, 'remux hos', /remux hosts $/);
    // Open approvals with their question; an agent prompt's options with their labels.
    await typeTab(zsh, env, setup, 'remux approvals answer ', new RegExp(`${approvals[1]} +-- run \`make release\` on web1`));
    await typeTab(zsh, env, setup, `remux approvals answer ${approvals[0]} `, /1 +-- Yes/);
    await typeTab(zsh, env, setup, 'remux client run web1 --policy=d', /--policy=deploy $/);
  });

  test("fish: its own completion of a command line", { skip: !installed('fish') && 'fish is not installed' }, async () => {
    const script = join(home.home, 'remux.fish');
    writeFileSync(script, (await remux(['completion', 'fish'])).stdout);
    const described = (line: string): string[] => {
      const run = spawnSync('fish', ['--no-config', '-c', `source ${script}; complete -C '${line}'`], { env, encoding: 'utf8', timeout: 30_000 });
      assert.equal(run.stderr, '');
      return run.stdout.split('\n').filter((l) => l !== '');
    };
    const fish = (line: string): string[] => described(line).map((l) => l.split('\t')[0]!);
    assert.deepEqual(fish('remux client run web1 --policy '), ['deploy', 'read_only']);
    assert.deepEqual(fish('remux session ls --host env='), ['env=prod', 'env=staging']);
    assert.deepEqual(fish('remux se'), ['session']);
    assert.deepEqual(fish('remux session ls --host=w'), ['--host=web1']);
    // fish sorts them itself.
    assert.deepEqual(described('remux approvals approve ').sort(), [`${approvals[0]}\tanswer claude's prompt in agent session web (3f2a): Run make?`, `${approvals[1]}\trun \`make release\` on web1`].sort());
    assert.deepEqual(fish('remux code start . --agent=g'), ['--agent=gemini']);
  });
});

describe('remux __complete with broken, missing or slow sources', () => {
  test('a broken hosts.yaml and policies.yaml: no error text, no hosts, subcommands still complete', () => {
    const home = tempHome();
    try {
      writeFileSync(join(home.home, 'hosts.yaml'), 'hosts:\n  web1: [\n    {{ not yaml\n');
      writeFileSync(join(home.home, 'policies.yaml'), 'policies: [1, 2\n');
      const env = shellEnv(home.env);
      for (const words of [['client', 'run', ''], ['client', 'run', 'x', '--policy', ''], ['session', 'ls', '--host', 'env', '=', '']]) {
        const { reply, stderr } = bashComplete(words, env);
        assert.equal(stderr, '', words.join(' '));
        assert.ok(!reply.includes('web1'), `${words.join(' ')}: ${reply.join(' ')}`);
        assert.ok(reply.every((r) => !/error|remux:/i.test(r)), reply.join('\n'));
      }
      assert.deepEqual(bashComplete(['client', 'r'], env).reply, ['run', 'read']);
    } finally {
      home.remove();
    }
  });

  test('a name with a newline, tab or space is not offered: it would split into other candidates', async () => {
    const home = tempHome();
    try {
      writeFileSync(join(home.home, 'hosts.yaml'), 'hosts:\n  "evil\\nall": {}\n  "a\\tb": {}\n  "c d": {}\n  web1: {}\n');
      const run = await remux(['__complete', '--', 'client', 'read', ''], { env: home.env });
      assert.equal(run.stdout, 'web1\nlocalhost\tthis machine\n:0\n');
    } finally {
      home.remove();
    }
  });

  test('a fresh REMUX_HOME stays empty: no audit store, no daemon socket, no file at all', () => {
    const home = tempHome();
    try {
      const env = shellEnv(home.env);
      for (const words of [[''], ['client', 'run', ''], ['client', 'run', 'localhost', '--policy', ''], ['session', 'attach', ''], ['code', 'attach', ''], ['principal', 'rm', ''], ['rpc', 'localhost', 'Exec.'], ['approvals', 'answer', ''], ['session', 'play', ''], ['code', 'start', '.', '--agent', '']]) {
        assert.equal(bashComplete(words, env).stderr, '');
      }
      assert.deepEqual(readdirSync(home.home), []);
      // The code cache it does write is its own, under XDG_CACHE_HOME.
      const cached = readdirSync(join(CACHE, 'remux'));
      assert.ok(cached.some((f) => f.endsWith('-__complete.v8cache')), cached.join(' '));
    } finally {
      home.remove();
    }
  });

  test('a tmux that never answers is given up on at once; a missing REMUX_HOME completes nothing', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'remux-completion-bin-'));
    try {
      writeFileSync(join(bin, 'tmux'), '#!/bin/sh\nexec sleep 30\n');
      chmodSync(join(bin, 'tmux'), 0o755);
      const env = { REMUX_HOME: join(bin, 'no-such-home'), XDG_CACHE_HOME: CACHE, TMUX: undefined, PATH: `${bin}:${process.env.PATH ?? ''}` };
      const started = performance.now();
      const run = await remux(['__complete', '--', 'session', 'attach', ''], { env, timeoutMs: 20_000 });
      assert.ok(performance.now() - started < 10_000, `answered in ${Math.round(performance.now() - started)} ms`);
      assert.deepEqual([run.code, run.stdout, run.stderr], [0, ':0\n', '']);
      assert.deepEqual((await remux(['__complete', '--', 'client', 'run', ''], { env })).stdout, 'localhost\tthis machine\nall\tevery host\n:0\n');
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  test('a value remux knows nothing of leaves file names to the shell', async () => {
    const home = tempHome();
    try {
      assert.equal((await remux(['__complete', '--', 'policy', 'validate', ''], { env: home.env })).stdout, ':2\n');
      assert.equal((await remux(['__complete', '--', 'hosts', 'add', 'x', 'h', '--identity', ''], { env: home.env })).stdout, ':2\n');
      // A new name: neither candidates nor file names.
      assert.equal((await remux(['__complete', '--', 'hosts', 'add', ''], { env: home.env })).stdout, ':0\n');
      assert.equal((await remux(['completion', 'tcsh'])).code, 2);
    } finally {
      home.remove();
    }
  });
});
