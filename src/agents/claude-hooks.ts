// A Claude Code session's hooks, set up by its supervisor: the session's hook endpoint answering with
// remux's approvals, channels, policy and audit (hook-deps.ts), and the settings file Claude Code is
// started with (`--settings`), whose hooks run `remux code hook` for this session.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuditStore } from '../audit/store.js';
import type { Config } from '../config/config.js';
import { auditDbFile, policiesFile } from '../config/paths.js';
import { ReloadingFile } from '../config/reloading.js';
import { loadPolicies } from '../core/context.js';
import { Approvals } from '../notify/service.js';
import { hookDeps } from './hook-deps.js';
import { HOOK_DIR_ENV, hookDirOf, serveHookEndpoint } from './hook-endpoint.js';
import { answerHook, claudeHookSettings } from './hooks.js';
import { DOCKER_HOOK_CLIENT } from './sandbox.js';

/** How a hook inside the session starts remux: this Node and this installation's launcher. */
const REMUX_ARGV = [process.execPath, fileURLToPath(new URL('../../../bin/remux.js', import.meta.url))];
/** The standalone hook client (hook-main.ts), for a container that has Node but not remux; beside dist/src/cli and dist/src/agents. */
export const HOOK_CLIENT_FILE = fileURLToPath(new URL('../hook.cjs', import.meta.url));

export interface ClaudeHooks {
  settingsFile: string;
  /** The session's hook directory: allowed into its sandbox, named to the agent in HOOK_DIR_ENV. */
  dir: string;
  socket: string;
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * `remux`: hooks run this installation; `docker`: the container's `node` runs the mounted hook client.
 * `notify`: where the session's messages go, asked for each one (the supervisor's follows config.yaml).
 */
export async function startClaudeHooks(
  id: string,
  config: Config,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
  client: 'remux' | 'docker' = 'remux',
  notify: () => Config['notify'] = () => config.notify,
): Promise<ClaudeHooks> {
  const policyName = config.default_policy;
  const policies = new ReloadingFile(policiesFile(env), loadPolicies);
  let preToolUse = false;
  if (existsSync(policies.file)) {
    preToolUse = policies.get().has(policyName); // a broken policies file stops the start here, with file:line
    if (!preToolUse) log(`remux: no policy "${policyName}" in ${policies.file}: Bash commands are not checked by remux (PreToolUse not installed)`);
  }
  const audit = AuditStore.open(auditDbFile(env));
  const approvals = new Approvals({ env, config, audit, asker: `the supervisor of agent session ${id}`, notify });
  const deps = hookDeps(id, { config, approvals, audit, policies: () => policies.get(), policyName, env });
  const dir = hookDirOf(id, env);
  let endpoint;
  try {
    endpoint = await serveHookEndpoint({ session: id, dir, answer: (input, signal) => answerHook(input, { ...deps, ask: (request) => deps.ask(request, signal) }), log });
  } catch (err) {
    approvals.close();
    audit.close();
    throw err;
  }
  const settingsFile = join(dir, 'settings.json');
  writeFileSync(settingsFile, `${JSON.stringify(claudeHookSettings(client === 'docker' ? ['node', DOCKER_HOOK_CLIENT] : REMUX_ARGV, id, config.approvals.timeout_seconds, preToolUse), null, 2)}\n`, { mode: 0o600 });
  return {
    settingsFile,
    dir,
    socket: endpoint.socket,
    env: { [HOOK_DIR_ENV]: dir },
    close: async () => {
      await endpoint.close();
      approvals.close();
      audit.close();
    },
  };
}
