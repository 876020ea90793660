// Every command's --help ends with examples a user can copy: walked over the CLI's whole command tree
// in this process (the same registration the CLI runs), so a new command without them fails here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Command } from 'commander';
import { registerCommands } from '../../src/cli/commands/index.js';
import type { Invocation } from '../../src/cli/invocation.js';
import { createProgram } from '../../src/cli/program.js';

function capture(): { inv: Invocation; text: () => string; reset: () => void } {
  let out = '';
  const sink = { write: (chunk: string | Uint8Array): boolean => ((out += String(chunk)), true) };
  const inv = {
    args: [],
    stdout: sink,
    stderr: sink,
    stdinIsTTY: false,
    stdin: null,
    stderrIsTTY: false,
    columns: 100,
    env: {},
    cwd: '/',
    question: () => Promise.resolve(''),
    onInterrupt: () => () => {},
    setExitCode: () => {},
  } as unknown as Invocation;
  return { inv, text: () => out, reset: () => void (out = '') };
}

function walk(cmd: Command, path: string[]): Array<{ path: string[]; cmd: Command }> {
  return [{ path, cmd }, ...cmd.commands.flatMap((sub) => walk(sub, [...path, sub.name()]))];
}

test('every command and command group has examples in its --help, each a remux command line', () => {
  const { inv, text, reset } = capture();
  const program = createProgram(inv);
  registerCommands(program, inv);
  const commands = walk(program, []);
  assert.ok(commands.length > 60, `the whole tree (${commands.length} commands)`);
  const missing: string[] = [];
  for (const { path, cmd } of commands) {
    reset();
    cmd.outputHelp();
    const examples = /\nExamples:\n((?: {2}.*\n?)+)/.exec(text())?.[1];
    if (!examples || !examples.split('\n').filter(Boolean).every((line) => /^ {2}(#|.*\bremux )/.test(line))) missing.push(`remux ${path.join(' ')}`.trim());
  }
  assert.deepEqual(missing, []);
});

test("client edit --help says what an edit does when another writer changed the file meanwhile: it writes nothing (as perform-file does), not that the change is lost", () => {
  const { inv, text } = capture();
  const program = createProgram(inv);
  registerCommands(program, inv);
  const edit = program.commands.find((c) => c.name() === 'client')?.commands.find((c) => c.name() === 'edit');
  assert.ok(edit);
  edit.outputHelp();
  assert.match(text(), /if another writer changed it while the edit was worked out, nothing is\nwritten \(exit 1: read it again and redo the edit\)/);
  assert.doesNotMatch(text(), /is lost/);
});
