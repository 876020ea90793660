// The hook client a Docker container runs (`--sandbox docker`): the image has Node but not remux, so the
// supervisor mounts this one bundled file (dist/src/hook.cjs: Node's own modules only) read-only at
// DOCKER_HOOK_CLIENT, beside the session's hook directory. Claude Code's hook command is
// `node /opt/remux/hook.cjs code hook --session ID`: the arguments of `remux code hook`, and the same
// answer: the decision on stdout, or nothing; exit 1 (never 2, which Claude Code reads as deny) on failure.
import { relayHook } from './hook-client.js';
import { HOOK_DIR_ENV } from './hook-wire.js';

async function main(): Promise<void> {
  const at = process.argv.indexOf('--session');
  const session = at > 0 ? process.argv[at + 1] : undefined;
  const dir = process.env[HOOK_DIR_ENV];
  if (session === undefined) throw new Error('usage: hook.cjs code hook --session ID (Claude Code runs this)');
  if (!dir) throw new Error(`${HOOK_DIR_ENV} is not set: this runs only inside a remux agent session`);
  await relayHook(dir, session, process.stdin, process.stdout);
}

main().catch((err: unknown) => {
  process.stderr.write(`remux hook: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
