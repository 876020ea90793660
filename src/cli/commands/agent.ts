import type { Command } from 'commander';

export interface AgentCommandOptions {
  gateway?: string;
  name?: string;
  tokenFile?: string;
  caFile?: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerAgent(program: Command): void {
  const agent = program
    .command('agent')
    .description('run an outbound agent: dial the gateway, stay connected, and serve this machine as one of its hosts')
    .option('--gateway <url>', 'the gateway daemon, e.g. wss://gw.example.com:7777')
    .option('--name <name>', 'the host name this machine takes in the gateway (its hosts.yaml entry)')
    .option('--token-file <file>', 'file holding the agent token (mode 600; made on the gateway by remux agent token NAME)')
    .option('--ca-file <file>', "the gateway's certificate to trust besides the system's: its $REMUX_HOME/tls/cert.pem when it made its own")
    .addHelpText(
      'after',
      `
Requests run through this machine's own policies, audit store and sandbox ($REMUX_HOME here) as principal
agent:gateway-NAME, after the gateway's policy allowed them: both must allow.

Examples:
  remux agent token laptop                 # on the gateway: adds host laptop (transport agent), prints its token once
  remux agent --gateway wss://gw.example.com:7777 --name laptop --token-file ~/.config/remux/agent.token
  remux agent --gateway wss://gw.example.com:7777 --name laptop --token-file agent.token --ca-file gateway-cert.pem`,
    )
    .action(async (opts: AgentCommandOptions) => {
      const { agentCommand } = await import('../../agent/command.js');
      await agentCommand(opts);
    });

  agent
    .command('token')
    .description('on the gateway: add an agent host to hosts.yaml (or give it a new token) and print its token once')
    .argument('<name>', 'the host name the agent will take')
    .option('-l, --label <key=value>', 'label for selectors; repeatable', collect)
    .option('--rotate', 'replace the token of an existing agent host (the old one stops working)')
    .option('--json', 'print {"name","token"}')
    .addHelpText('after', '\nExamples:\n  remux agent token laptop --label env=dev\n  remux agent token laptop --rotate --json')
    .action(async (name: string, opts: { label?: string[]; rotate?: boolean; json?: boolean }) => {
      const { agentTokenCommand } = await import('../../agent/command.js');
      await agentTokenCommand(name, opts);
    });
}
