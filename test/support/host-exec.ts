// A command on a Host (hosts/types.ts) as the core runs one, with no policy in between: unbounded
// output, no sandbox, from `/`; stdout and stderr collected as text. For tests of the transports themselves.
import type { ExecResult } from '../../src/exec/types.js';
import type { Host, HostExecRequest } from '../../src/hosts/types.js';
import { rawCommand } from '../policy/fixture.js';

export async function execOn(host: Host, argv: string[], req: Partial<HostExecRequest> = {}): Promise<ExecResult & { stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const result = await host.execute({
    list: rawCommand(argv),
    cwd: '/',
    timeoutMs: null,
    pipefail: false,
    output: { maxBytes: null, redact: [], redactBlocks: [] },
    sandbox: null,
    onStdout: (c) => (stdout += c.toString()),
    onStderr: (c) => (stderr += c.toString()),
    ...req,
  });
  return { ...result, stdout, stderr };
}
