// The whole exec contract of test/hosts/ssh.test.ts (exit codes, cwd refusal, pipefail, caps and
// redaction, timeout 124, abort 130, sandboxes and holders, a connection lost mid-command) once more,
// every wrapped command run through its connection's resident executor (src/hosts/ssh-executor.ts)
// instead of an exec channel.
process.env.SSH_TEST_RESIDENT = '1';
await import('./ssh.test.js');
