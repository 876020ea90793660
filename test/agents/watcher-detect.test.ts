// Detection over every screen fixture (test/agents/fixtures/screens, README says which are real
// captures): each is labelled here with its agent, expected state, and for prompts the options and keys.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { detect, profile, withOverrides, type AgentName } from '../../src/agents/profiles.js';
import { REPO_ROOT } from '../support/cli.js';

export const SCREENS = join(REPO_ROOT, 'test', 'agents', 'fixtures', 'screens');

interface Expected {
  agent: AgentName;
  state: string;
  /** id=effect:keys, keys joined by "+" (a key name in <>). */
  options?: string[];
  /** A piece of the question the approval shows. */
  question?: string;
}

const EXPECTED: Record<string, Expected> = {
  'claude-trust-folder.txt': { agent: 'claude', state: 'permission', options: ['1=allow:1', '2=deny:2'], question: 'Accessing workspace:' },
  'claude-api-key.txt': { agent: 'claude', state: 'permission', options: ['1=allow:1', '2=deny:2'], question: 'Do you want to use this API key?' },
  'claude-input.txt': { agent: 'claude', state: 'waiting' },
  'claude-working.txt': { agent: 'claude', state: 'working' },
  'claude-retrying.txt': { agent: 'claude', state: 'working' },
  'claude-offline.txt': { agent: 'claude', state: 'unknown' },
  'claude-bash-permission.txt': { agent: 'claude', state: 'permission', options: ['1=allow:1', '2=allow:2', '3=deny:3'], question: 'rm -rf build' },
  'claude-bash-permission-boxed.txt': { agent: 'claude', state: 'permission', options: ['1=allow:1', '2=allow:2', '3=deny:3'], question: 'npm test' },
  'claude-edit-permission.txt': { agent: 'claude', state: 'permission', options: ['1=allow:1', '2=allow:2', '3=deny:3'], question: 'Do you want to make this edit to app.ts?' },
  'claude-usage-limit.txt': { agent: 'claude', state: 'rate_limited' },
  'codex-approval.txt': { agent: 'codex', state: 'permission', options: ['1=allow:y', '2=allow:a', '3=deny:<Escape>'], question: '$ pytest -q tests/test_api.py' },
  'codex-working.txt': { agent: 'codex', state: 'working' },
  'gemini-approval.txt': { agent: 'gemini', state: 'permission', options: ['1=allow:1', '2=allow:2', '3=deny:3'], question: "Allow execution of: 'ls'?" },
  'gemini-quota.txt': { agent: 'gemini', state: 'rate_limited' },
  'aider-run-command.txt': { agent: 'aider', state: 'permission', options: ['y=allow:y+<Enter>', 'n=deny:n+<Enter>', "d=deny:d+<Enter>"], question: 'Run shell command?' },
  'aider-input.txt': { agent: 'aider', state: 'waiting' },
  'generic-yn.txt': { agent: 'generic', state: 'permission', options: ['y=allow:y+<Enter>', 'n=deny:n+<Enter>'], question: 'Do you want to continue?' },
};

test('every fixture is labelled, and every label has its fixture', () => {
  const files = readdirSync(SCREENS).filter((f) => f.endsWith('.txt')).sort();
  assert.deepEqual(files, Object.keys(EXPECTED).sort());
});

for (const [file, want] of Object.entries(EXPECTED)) {
  test(`${file}: ${want.agent} ${want.state}`, () => {
    const got = detect(profile(want.agent), readFileSync(join(SCREENS, file), 'utf8'));
    assert.equal(got.state, want.state, JSON.stringify(got));
    if (want.options) {
      const shown = got.prompt?.options.map((o) => `${o.id}=${o.effect}:${o.keys.map((k) => ('key' in k ? `<${k.key}>` : k.text)).join('+')}`);
      assert.deepEqual(shown, want.options);
      assert.ok(got.prompt?.question.includes(want.question ?? ''), `question ${JSON.stringify(got.prompt?.question)} has ${want.question}`);
    } else {
      assert.equal(got.prompt, undefined);
    }
  });
}

test('moving the cursor keeps the prompt (same fingerprint); another command is another prompt', () => {
  const claude = profile('claude');
  const screen = readFileSync(join(SCREENS, 'claude-bash-permission.txt'), 'utf8');
  const moved = screen.replace(' ❯ 1. Yes', '   1. Yes').replace('   2. Yes, and', ' ❯ 2. Yes, and');
  const other = screen.replaceAll('rm -rf build', 'rm -rf /');
  const fp = (s: string): string | undefined => detect(claude, s).prompt?.fingerprint;
  assert.equal(fp(moved), fp(screen));
  assert.notEqual(fp(other), fp(screen));
});

test('a menu that is not a yes/no question (a theme picker) is waiting, not a permission prompt', () => {
  const picker = ' Choose the text style that looks best with your terminal:\n\n ❯ 1. Dark mode\n   2. Light mode\n   3. Dark mode (colorblind-friendly)\n';
  assert.notEqual(detect(profile('claude'), picker).state, 'permission');
});

test('old numbered menus far above the bottom are not the current prompt', () => {
  const screen = readFileSync(join(SCREENS, 'claude-bash-permission.txt'), 'utf8');
  const scrolled = `${screen}\n● Bash(rm -rf build)\n  ⎿  (No content)\n\n● Done.\n\nline\nline\nline\nline\nline\nline\n❯ \n  ? for shortcuts\n`;
  assert.equal(detect(profile('claude'), scrolled).state, 'waiting');
});

test('overrides replace patterns; a bad regex names the field', () => {
  const custom = withOverrides(profile('generic'), { working: ['^compiling'], idle_seconds: 5 });
  assert.equal(detect(custom, 'compiling foo.c\n').state, 'working');
  assert.equal(custom.idleMs, 5000);
  assert.throws(() => withOverrides(profile('claude'), { rate_limit: ['ok', '('] }), /agent claude: rate_limit\[1\]: bad regular expression/);
  assert.throws(() => withOverrides(profile('claude'), { idle_seconds: 0 }), /idle_seconds must be positive/);
});
