// A Claude Code session's hooks, set up by its supervisor: the session's hook endpoint answering with
// remux's approvals, channels, policy and audit (hook-deps.ts), and the settings file Claude Code is
// started with (`--settings`), whose hooks run the hook client (`code hook --session ID`) for this session.
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

/**
 * The standalone hook client (hook-main.ts; beside dist/src/cli and dist/src/agents): what `remux code
 * hook` does inside a session, without loading the CLI. Claude Code waits for it before every Bash command
 * (PreToolUse), and it starts in a third of the time the whole CLI takes. A container has Node but not
 * remux: it runs the copy mounted at DOCKER_HOOK_CLIENT.
 */
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
  writeFileSync(settingsFile, `${JSON.stringify(claudeHookSettings(client === 'docker' ? ['node', DOCKER_HOOK_CLIENT] : [process.execPath, HOOK_CLIENT_FILE], id, config.approvals.timeout_seconds, preToolUse), null, 2)}\n`, { mode: 0o600 });
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
