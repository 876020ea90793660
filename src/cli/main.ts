// remux CLI entry. Only commander and the command definitions load at start-up; each action
// imports what it needs when it runs, so `remux --version` stays fast.
import { registerAgent } from './commands/agent.js';
import { registerAudit } from './commands/audit.js';
import { registerClient } from './commands/client.js';
import { registerCode } from './commands/code.js';
import { registerConfig } from './commands/config.js';
import { registerDaemon, registerStatus } from './commands/daemon.js';
import { registerHosts } from './commands/hosts.js';
import { registerApprovals, registerNotify } from './commands/notify.js';
import { registerMcp } from './commands/mcp.js';
import { registerPolicy } from './commands/policy.js';
import { registerSession } from './commands/session.js';
import type { ClientHost } from './client-commands.js';
import { registerPrincipal } from './commands/principal.js';
import { registerRpc } from './commands/rpc.js';
import { registerTemplate } from './commands/template.js';
import { processInvocation } from './invocation.js';
import { createProgram, runProgram } from './program.js';

// `remux audit ls | head` closes our stdout early: stop quietly, like other Unix tools. (A socket as
// stdout, as Node gives its children, says ECONNRESET instead of EPIPE when unread data was left.)
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE' || err.code === 'ECONNRESET') process.exit(process.exitCode ?? 0);
  throw err;
});

const invocation = processInvocation();
const program = createProgram(invocation);
registerConfig(program);
registerPolicy(program);
registerHosts(program);
const clientHost = async (): Promise<ClientHost> => (await import('./client-commands.js')).processClientHost(invocation);
registerClient(program, clientHost);
registerSession(program, clientHost);
registerDaemon(program);
registerStatus(program);
registerAudit(program);
registerPrincipal(program);
registerNotify(program);
registerApprovals(program);
registerMcp(program, invocation);
registerAgent(program);
registerCode(program);
registerRpc(program, clientHost);
registerTemplate(program, invocation);
// No top-level await: launch.cts runs this module bundled as CommonJS.
void runProgram(program, process.argv.slice(2), invocation);
