// Entry of the supervisor process in an agent session's pane (see supervisor.ts). A separate ES module
// rather than a CLI command: sandbox-runtime is ES-only, and the CLI's bundle cannot import() it.
import { supervise } from './supervisor.js';

const [id, flag] = process.argv.slice(2);
if (!id) {
  process.stderr.write('usage: supervisor-main.js ID [--resume]\n');
  process.exit(2);
}
supervise(id, flag === '--resume').catch((err: unknown) => {
  process.stderr.write(`remux: supervisor: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
