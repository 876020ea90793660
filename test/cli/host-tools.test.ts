// Programs that report on the host (ps, df, uptime, free) under the default policy and sandbox, as the
// README's tour runs them: an execute_binary rule with sandbox: false runs them outside the OS sandbox,
// whose own PID namespace and root they would otherwise report; the rest of a pipeline stays inside.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { remux, tempHome } from '../support/cli.js';

const MARKER = `remux-hidden-${process.pid}`;

describe('host-inspection programs see the host, not the sandbox', () => {
  const h = tempHome();
  // Under /tmp, which read_only shows; the secret outside every policy path.
  const tree = mkdtempSync(join(tmpdir(), 'remux-host-tools-'));
  const secretDir = mkdtempSync('/var/tmp/remux-host-tools-');
  const env = h.env;
  // A process of the host's, which no sandbox started: `sleep 12345` is what the tests look for.
  const sleeper = spawn('sleep', ['12345'], { stdio: 'ignore' });
  let policyLine = 0;

  before(async () => {
    assert.equal((await remux(['config', 'init'], { env })).code, 0);
    writeFileSync(join(secretDir, 'key'), `${MARKER}\n`);
    symlinkSync(join(secretDir, 'key'), join(tree, 'key-link'));
    writeFileSync(join(tree, 'plain'), 'sleep 12345 is in a file too\n');
    mkdirSync(join(tree, 'out'));
    const lines = readFileSync(join(h.home, 'policies.yaml'), 'utf8').split('\n');
    const readOnly = lines.findIndex((l) => /^ {2}read_only:/.test(l));
    // The rule's line is its `- operation:` line, just above its resource (0-based index = 1-based line).
    policyLine = readOnly + lines.slice(readOnly).findIndex((l) => /resource: \[ ps, df, uptime, free \]/.test(l));
  });
  after(() => {
    sleeper.kill();
    h.remove();
    rmSync(tree, { recursive: true, force: true });
    rmSync(secretDir, { recursive: true, force: true });
  });

  test('ps aux lists a process of the host', async () => {
    const r = await remux(['client', 'run', 'localhost', '--', 'ps aux'], { env, cwd: tree });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^\\S+\\s+${sleeper.pid}\\s.*sleep 12345$`, 'm'), r.stdout);
  });

  test('ps aux | grep finds it, while grep stays in the sandbox', async () => {
    // grep -R follows key-link to the secret: only the sandbox keeps it from it, and grep runs there.
    const r = await remux(['client', 'run', 'localhost', '--', `ps aux | grep -R -e 'sleep 12345' -e ${MARKER} - ${tree}`], { env, cwd: tree });
    // 2: the link leads nowhere inside.
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /key-link: No such file or directory/);
    assert.match(r.stdout, new RegExp(`^\\(standard input\\):\\S+\\s+${sleeper.pid}\\s.*sleep 12345$`, 'm'), r.stdout);
    assert.match(r.stdout, /plain:sleep 12345 is in a file too/);
    // (The marker itself is in ps's lines: grep's own command line.)
    assert.ok(!r.stdout.includes(`key-link:${MARKER}`), `grep read the secret outside the sandbox:\n${r.stdout}`);
  });

  test('after a leading cd and another command, the stage let out is still the right one', async () => {
    const r = await remux(['client', 'run', 'localhost', '--', `cd ${tree} && cat plain && ps aux | grep -c 'sleep 1234[5]'`], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'sleep 12345 is in a file too\n1\n');
  });

  test("df -P / reports the host's root filesystem", async () => {
    const r = await remux(['client', 'run', 'localhost', '--', 'df -P /'], { env, cwd: tree });
    assert.equal(r.code, 0, r.stderr);
    const host = spawnSync('df', ['-P', '/'], { encoding: 'utf8' }).stdout;
    const fields = (out: string): string[] => {
      const [fs, , , , , mount] = (out.trim().split('\n')[1] ?? '').split(/\s+/);
      return [fs ?? '', mount ?? ''];
    };
    assert.deepEqual(fields(r.stdout), fields(host), r.stdout);
    assert.notEqual(fields(r.stdout)[0], 'tmpfs');
  });

  test('ps auxe (every environment) is refused, naming /proc/*/environ', async () => {
    for (const command of ['ps auxe', 'ps -auxe', 'ps -ef -u xe']) {
      const r = await remux(['client', 'run', 'localhost', '--', command], { env, cwd: tree });
      assert.equal(r.code, 77, `${command}: ${r.stdout}`);
      assert.match(r.stderr, /read_file \/proc\/\*\/environ: no rule of policy read_only allows it/);
    }
    const ef = await remux(['client', 'run', 'localhost', '--', 'ps -ef'], { env, cwd: tree });
    assert.equal(ef.code, 0, ef.stderr);
  });

  test("a stage let out opens no file redirection itself: refused, and a sandboxed program's is the way", async () => {
    const out = join(tree, 'out', 'ps.txt');
    const r = await remux(['client', 'run', 'localhost', '--policy', 'write_capable', '--', `ps aux > ${out}`], { env, cwd: tree });
    assert.equal(r.code, 77, r.stdout);
    assert.match(r.stderr, /this stage runs outside the OS sandbox \(rule write_capable#1 \(policies\.yaml:\d+\) says sandbox: false\), where remux would open it with its own rights; pipe the output to a sandboxed program instead/);
    const piped = await remux(['client', 'run', 'localhost', '--policy', 'write_capable', '--', `ps aux | cat > ${out}`], { env, cwd: tree });
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(readFileSync(out, 'utf8'), /sleep 12345/);
  });

  test('a stage that needs execute_code never leaves the sandbox, whatever its execute_binary rule says', async () => {
    const script = join(tree, 'x.sh');
    writeFileSync(script, `cat ${secretDir}/key\n`);
    const file = join(h.home, 'code.yaml');
    writeFileSync(
      file,
      `policies:
  code:
    capabilities:
      - { operation: execute_binary, resource: bash, sandbox: false }
      - { operation: execute_code, resource: bash }
      - { operation: read_file, resource: ${tree}/** }
      - { operation: write_stdout, resource: null }
`,
    );
    const codeEnv = { ...env, REMUX_POLICY_CONFIG: file };
    const r = await remux(['client', 'run', 'localhost', '--policy', 'code', '--', `bash ${script}`], { env: codeEnv, cwd: tree });
    assert.ok(!r.stdout.includes(MARKER), `the script ran outside the sandbox:\n${r.stdout}`);
    assert.match(r.stderr, /No such file or directory/);
    const check = await remux(['policy', 'check', 'code', '--json', '--', `bash ${script}`], { env: codeEnv, cwd: tree });
    assert.deepEqual(JSON.parse(check.stdout).bounds, [{ stage: 0, layer: 'sandbox', code: `bash would run the script ${script}, whose contents cannot be checked` }]);
  });

  test('policy check says which rule runs a stage outside the sandbox, in text and JSON', async () => {
    const text = await remux(['policy', 'check', 'read_only', '--', 'ps aux | grep sshd'], { env, cwd: tree });
    assert.equal(text.code, 0, text.stderr);
    assert.ok(
      text.stdout.includes(`  stage 1  bounded by static checks only (rule read_only#1 at policies.yaml:${policyLine} runs it outside the sandbox: sandbox: false)\n`),
      text.stdout,
    );
    assert.ok(text.stdout.includes('  stage 2  bounded by static checks, then the OS sandbox\n'), text.stdout);
    assert.ok(text.stdout.includes('  runs inside the OS sandbox, but for stage 1 (sandbox: false)\n'), text.stdout);
    const show = await remux(['policy', 'show', 'read_only'], { env });
    assert.ok(show.stdout.includes(`#1  allow  execute_binary  (line ${policyLine})  sandbox: false\n      ps df uptime free\n`), show.stdout);
    const json = await remux(['policy', 'check', 'read_only', '--json', '--', 'ps aux | grep sshd'], { env, cwd: tree });
    const { bounds } = JSON.parse(json.stdout) as { bounds: unknown };
    assert.deepEqual(bounds, [
      { stage: 0, layer: 'static', outside: { policy: 'read_only', index: 1, operation: 'execute_binary', effect: 'allow', source: { file: join(h.home, 'policies.yaml'), line: policyLine } } },
      { stage: 1, layer: 'static+sandbox' },
    ]);
  });
});
