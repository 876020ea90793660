// remux CLI entry. Only commander and the command definitions load at start-up; each action
// imports what it needs when it runs, so `remux --version` stays fast.
import { registerCommands } from './commands/index.js';
import { processInvocation } from './invocation.js';
import { createProgram, runProgram } from './program.js';

const invocation = processInvocation();
const program = createProgram(invocation);
registerCommands(program, invocation);
// No top-level await: launch.cts runs this module bundled as CommonJS.
void runProgram(program, process.argv.slice(2), invocation);
