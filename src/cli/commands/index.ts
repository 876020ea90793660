// The whole command tree of the CLI process, in the order `remux --help` lists it.
import type { Command } from 'commander';
import type { ClientHost } from '../client-commands.js';
import type { Invocation } from '../invocation.js';
import { registerAgent } from './agent.js';
import { registerAudit } from './audit.js';
import { registerClient } from './client.js';
import { registerCode } from './code.js';
import { registerCompletion } from './completion.js';
import { registerConfig } from './config.js';
import { registerDaemon, registerStatus } from './daemon.js';
import { registerHosts } from './hosts.js';
import { registerMcp } from './mcp.js';
import { registerApprovals, registerNotify } from './notify.js';
import { registerPolicy } from './policy.js';
import { registerPrincipal } from './principal.js';
import { registerRpc } from './rpc.js';
import { registerSession } from './session.js';
import { registerTemplate } from './template.js';

export function registerCommands(program: Command, invocation: Invocation): void {
  const clientHost = async (): Promise<ClientHost> => (await import('../client-commands.js')).processClientHost(invocation);
  registerConfig(program);
  registerPolicy(program);
  registerHosts(program);
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
  registerCompletion(program, invocation);
}
