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
  'claude-trust-folder.txt': { agent: 'claude', state: 'permission', options: ['1=allow:<Enter>', '2=deny:<Down>+<Enter>'], question: 'Accessing workspace:' },
  'claude-api-key.txt': { agent: 'claude', state: 'permission', options: ['1=allow:<Up>+<Enter>', '2=deny:<Enter>'], question: 'Do you want to use this API key?' },
  'claude-input.txt': { agent: 'claude', state: 'waiting' },
  'claude-working.txt': { agent: 'claude', state: 'working' },
  'claude-retrying.txt': { agent: 'claude', state: 'working' },
  'claude-offline.txt': { agent: 'claude', state: 'running' },
  'claude-bash-permission.txt': { agent: 'claude', state: 'permission', options: ['1=allow:<Enter>', '2=allow:<Down>+<Enter>', '3=deny:<Down>+<Down>+<Enter>'], question: 'rm -rf build' },
  'claude-npm-permission.txt': { agent: 'claude', state: 'permission', options: ['1=allow:<Enter>', '2=allow:<Down>+<Enter>', '3=deny:<Down>+<Down>+<Enter>'], question: 'npm test' },
  'claude-npm-permission-cursor2.txt': { agent: 'claude', state: 'permission', options: ['1=allow:<Up>+<Enter>', '2=allow:<Enter>', '3=deny:<Down>+<Enter>'], question: 'npm test' },
  'claude-bash-permission-boxed.txt': { agent: 'claude', state: 'permission', options: ['1=allow:<Up>+<Enter>', '2=allow:<Enter>', '3=deny:<Down>+<Enter>'], question: 'npm test' },
  'claude-edit-permission.txt': { agent: 'claude', state: 'permission', options: ['1=allow:<Enter>', '2=allow:<Down>+<Enter>', '3=deny:<Down>+<Down>+<Enter>'], question: 'Do you want to make this edit to app.ts?' },
  'claude-usage-limit.txt': { agent: 'claude', state: 'rate_limited' },
  'codex-approval.txt': { agent: 'codex', state: 'permission', options: ['1=allow:y', '2=allow:a', '3=deny:<Escape>'], question: '$ pytest -q tests/test_api.py' },
  'codex-working.txt': { agent: 'codex', state: 'working' },
  'gemini-approval.txt': { agent: 'gemini', state: 'permission', options: ['1=allow:<Enter>', '2=allow:<Down>+<Enter>', '3=deny:<Down>+<Down>+<Enter>'], question: "Allow execution of: 'ls'?" },
  'gemini-quota.txt': { agent: 'gemini', state: 'rate_limited' },
  // Gemini CLI 0.61 in a new workspace (real captures): trusting the folder is a question for the phone;
  // the sign-in method that follows is a setting, not a permission.
  'gemini-trust.txt': { agent: 'gemini', state: 'permission', options: ['1=allow:<Enter>', '2=allow:<Down>+<Enter>', '3=deny:<Down>+<Down>+<Enter>'], question: 'Do you trust the files in this folder?' },
  'gemini-auth.txt': { agent: 'gemini', state: 'running' },
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

test('moving the cursor keeps the prompt (same fingerprint); another command, or text typed into option 2, is another prompt', () => {
  const claude = profile('claude');
  const fp = (file: string, edit = (s: string): string => s): string | undefined => detect(claude, edit(readFileSync(join(SCREENS, file), 'utf8'))).prompt?.fingerprint;
  // Both real captures: the same prompt before and after Down.
  assert.equal(fp('claude-npm-permission-cursor2.txt'), fp('claude-npm-permission.txt'));
  assert.notEqual(fp('claude-npm-permission.txt', (s) => s.replaceAll('npm test', 'npm publish')), fp('claude-npm-permission.txt'));
  // A digit typed while the cursor is on option 2 lands in its field (seen live): not the asked prompt.
  assert.notEqual(fp('claude-npm-permission-cursor2.txt', (s) => s.replace('npm test * ', 'npm test *3')), fp('claude-npm-permission.txt'));
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

test("a screen drawn to make the patterns slow (one long joined line) is read in bounded time, its prompt still found", () => {
  // What a 400-column, 100-row terminal attached to the pane shows as one line (capture-pane -J).
  const slow = [`${'(a) '.repeat(10_000)}!`, `x${' '.repeat(40_000)}!`];
  for (const line of slow) {
    const began = performance.now();
    assert.equal(detect(profile('generic'), `${line}\n`).state, 'running');
    // Unbounded, each took seconds; bounded, a few milliseconds.
    assert.ok(performance.now() - began < 250, `${Math.round(performance.now() - began)} ms for a line of ${line.length}`);
  }
  const asked = detect(profile('aider'), `${'x'.repeat(40_000)} Add file.txt to the chat? (Y)es/(N)o [Yes]:\n`);
  assert.equal(asked.state, 'permission');
  assert.deepEqual(asked.prompt?.options.map((o) => `${o.id}=${o.effect}`), ['y=allow', 'n=deny']);
});
