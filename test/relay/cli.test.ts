// Outbound agents as a user runs them: `remux agent token` on the gateway, a real daemon serving HTTPS,
// and `remux agent` processes with their own REMUX_HOME dialing it. Commands and tmux sessions on the
// agent host through the daemon, `hosts list` liveness, backpressure from a slow client, an agent killed
// mid-command, the daemon restarted under a connected agent, and the agent's own refusals at start.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { generate } from 'selfsigned';
import { assertSlowClientHoldsCommand } from '../support/backpressure.js';
import { remux, spawnRemux } from '../support/cli.js';
import { call, stdioClient } from '../mcp/support.js';
import { AgentDaemon, waitFor, type AgentProcess, type HostRow } from './agent-process.js';

const POLICY = `policies:
  read_only:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: echo|true|head|sleep|cat }
      - { operation: read_file, resource: /dev/zero }
      - { operation: write_stdout, resource: null }
`;

const fileRules = (tree: string): string => ['read_file', 'write_file', 'list_directory'].map((op) => `      - { operation: ${op}, resource: "${tree}" }\n`).join('');

const d = new AgentDaemon();
const { gw, ag, tokenFile } = d;
const agentEnv = (): Record<string, string> => d.agentEnv();
const hostRow = (): Promise<HostRow> => d.hostRow();

describe('remux agent against a real daemon', () => {
  let agent: AgentProcess;
  before(async () => {
    await d.setUp({ gatewayPolicies: `${POLICY}${fileRules('/tmp/**')}`, agentPolicies: `${POLICY}${fileRules(`${d.login.home}/shared/**`)}`, labels: ['env=dev'] });
    agent = await d.connectAgent();
  });
  after(() => d.tearDown(agent));

  test('agent token: the host is in hosts.yaml with only the hash; a second token for it needs --rotate', async () => {
    const hosts = readFileSync(join(gw.home, 'hosts.yaml'), 'utf8');
    assert.match(hosts, /laptop:\n\s+labels: { env: dev }\n\s+transport: agent\n\s+token_sha256: [0-9a-f]{64}\n/);
    assert.ok(!hosts.includes(d.token));
    const again = await remux(['agent', 'token', 'laptop'], { env: gw.env });
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists.*\n.*--rotate/);
    const badLabel = await remux(['agent', 'token', 'desk', '--label', 'dev'], { env: gw.env });
    assert.equal(badLabel.code, 2, 'a usage error, as hosts add gives');
    assert.match(badLabel.stderr, /^remux: bad label "dev": write key=value/);
    assert.equal(readFileSync(join(gw.home, 'hosts.yaml'), 'utf8'), hosts, 'nothing added');
    // The command to run on the agent's machine names the port the daemon listens on, and that loopback is this machine's alone.
    const desk = await remux(['agent', 'token', 'desk'], { env: gw.env });
    assert.equal(desk.code, 0, desk.stderr);
    const port = new URL(d.url).port;
    assert.match(desk.stdout, new RegExp(`then run: remux agent --gateway wss://THIS-GATEWAY:${port} --name desk --token-file FILE --ca-file CERT\n`));
    assert.equal(
      desk.stderr,
      `note: the console listens on 127.0.0.1, which only this machine reaches: for an agent on another machine, listen on an address it reaches (http.listen in config.yaml, or remux daemon start --listen 0.0.0.0:${port})\n`,
    );
    assert.equal((await remux(['hosts', 'rm', 'desk'], { env: gw.env })).code, 0);
  });

  test('hosts list: transport agent, connected, from where and since when', async () => {
    const row = await hostRow();
    assert.equal(row.transport, 'agent');
    assert.equal(row.connected, true);
    assert.equal(row.address, '127.0.0.1');
    assert.ok(row.since && Date.parse(row.since) <= Date.now());
    const table = await remux(['hosts', 'list'], { env: gw.env });
    assert.match(table.stdout, /laptop\s+agent from 127\.0\.0\.1\s+env=dev\s+yes/);
  });

  test("hosts check: a connected agent is ok, as the daemon's relay sees it (this process cannot reach it)", async () => {
    const r = await remux(['hosts', 'check', 'laptop'], { env: gw.env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^laptop {2}ok {2}\d+ms {2}(sandbox \(bubblewrap|static checks only|no sandbox)/);
    const json = await remux(['hosts', 'check', 'env=dev', '--json'], { env: gw.env });
    assert.equal(json.code, 0, json.stdout + json.stderr);
    const row = JSON.parse(json.stdout) as { host: string; ok: boolean; exitCode: number; message: string | null };
    assert.deepEqual([row.host, row.ok, row.exitCode, row.message], ['laptop', true, 0, null]);
  });

  test('client run through the daemon runs on the agent, audited on both sides', async () => {
    const r = await remux(['client', 'run', 'laptop', '--', 'echo', 'via relay'], { env: gw.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'via relay\n');
    const local = await remux(['audit', 'ls', '--json'], { env: ag.env });
    assert.match(local.stdout, /agent:gateway-laptop/);
    assert.match(local.stdout, /via relay/);
  });

  test('tmux sessions on the agent host: new, ls, capture, kill', async () => {
    const made = await remux(['session', 'new', 'relayed', '--host', 'laptop', '-c', 'sleep 60'], { env: gw.env });
    assert.equal(made.code, 0, made.stderr);
    const ls = await remux(['session', 'ls', '--host', 'laptop'], { env: gw.env });
    assert.match(ls.stdout, /laptop\s+\S+\s+relayed\s+1/);
    assert.equal((await remux(['session', 'capture', 'relayed', '--host', 'laptop'], { env: gw.env })).code, 0);
    const killed = await remux(['session', 'kill', 'relayed', '--host', 'laptop', '-f'], { env: gw.env });
    assert.equal(killed.code, 0, killed.stderr);
  });

  test('files on the agent host: write (MCP through the daemon), read and list (the CLI); both policies hold', async () => {
    const dir = join(d.login.home, 'shared');
    mkdirSync(dir);
    const { client } = await stdioClient(gw.env);
    try {
      const wrote = await call(client, 'write_file', { host: 'laptop', path: join(dir, 'note.txt'), content: 'relayed file\n' });
      assert.equal(wrote.result.isError, undefined, wrote.text);
      assert.equal(readFileSync(join(dir, 'note.txt'), 'utf8'), 'relayed file\n');
      // The gateway's policy allows /tmp/**; the agent's own allows only its shared directory (and answers no question about elsewhere).
      const outside = await call(client, 'write_file', { host: 'laptop', path: join(d.login.home, 'elsewhere.txt'), content: 'x' });
      assert.equal(outside.result.isError, true);
      assert.match(outside.text, /write_file .*elsewhere\.txt: cannot be checked: agent laptop's own policy read_only gives no access there/);
    } finally {
      await client.close();
    }
    const read = await remux(['client', 'read', 'laptop', join(dir, 'note.txt')], { env: gw.env });
    assert.equal(read.code, 0, read.stderr);
    assert.equal(read.stdout, 'relayed file\n');
    // A read longer than one relay frame comes back whole.
    writeFileSync(join(dir, 'big.bin'), Buffer.alloc(1_300_000, 7));
    const big = await remux(['client', 'read', 'laptop', join(dir, 'big.bin'), '--max-bytes', String(2 << 20)], { env: gw.env });
    assert.equal(big.code, 0, big.stderr);
    assert.equal(big.stdout.length, 1_300_000);
    // Lines are byte ranges decided on the gateway: the agent reads bytes as ever (a tail first asks for the size).
    writeFileSync(join(dir, 'app.log'), 'one\ntwo\nthree\n');
    const tail = await remux(['client', 'read', 'laptop', join(dir, 'app.log'), '--tail', '2', '--json'], { env: gw.env });
    assert.equal(tail.code, 0, tail.stderr);
    assert.deepEqual(JSON.parse(tail.stdout), { path: join(dir, 'app.log'), size: 14, offset: 4, bytes: 10, truncated: false, lines: 2, firstLine: 2, encoding: 'utf8', content: 'two\nthree\n' });
    const ls = await remux(['client', 'ls', 'laptop', dir, '--json'], { env: gw.env });
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual((JSON.parse(ls.stdout) as { entries: Array<{ name: string }> }).entries.map((e) => e.name), ['app.log', 'big.bin', 'note.txt']);
    // An edit on the agent host: its read and its write each pass the agent's own policy too.
    const edit = await remux(['client', 'edit', 'laptop', join(dir, 'note.txt'), '--old', 'relayed', '--new', 'edited'], { env: gw.env });
    assert.equal(edit.code, 0, edit.stderr);
    assert.match(edit.stdout, /^-relayed file\n\+edited file\n/m);
    assert.equal(readFileSync(join(dir, 'note.txt'), 'utf8'), 'edited file\n');
    const audit = await remux(['audit', 'ls', '--json'], { env: ag.env });
    assert.match(audit.stdout, /"operation":"write_file".*note\.txt/);
  });

  test('client write to the agent host goes through the daemon (launcher and Node client), 5 MiB byte for byte; without one, it says to start it', async () => {
    const dir = join(d.login.home, 'shared');
    mkdirSync(dir, { recursive: true });
    // Several relay frames' worth: written whole, atomically, once every part arrived.
    const content = randomBytes((5 << 20) + 12345);
    for (const via of ['launcher', 'node'] as const) {
      const target = join(dir, `written-${via}.bin`);
      const child = spawnRemux(['client', 'write', 'laptop', target], { env: gw.env, via });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
      child.stdin!.end(content);
      assert.equal(await exited, 0, `${via}: ${stderr}`);
      assert.ok(readFileSync(target).equals(content), via);
    }
    // The agent's own policy still decides: outside its shared directory, refused (it answers no question about it).
    const refused = await remux(['client', 'write', 'laptop', join(d.login.home, 'outside.txt')], { env: gw.env, input: 'x' });
    assert.equal(refused.code, 77, refused.stderr);
    assert.match(refused.stderr, /write_file .*outside\.txt: cannot be checked: agent laptop's own policy read_only gives no access there/);
    const offline = await remux(['client', 'write', 'laptop', join(dir, 'never.txt'), '--no-daemon'], { env: gw.env, input: 'x' });
    assert.equal(offline.code, 255, offline.stderr);
    assert.match(offline.stderr, /agent host laptop is reached only through the daemon .*start it \(remux daemon start\)/);
    assert.throws(() => readFileSync(join(dir, 'never.txt')));
  });

  test('stdin reaches the command on the agent through the daemon, byte for byte, by the launcher and by the Node client', async () => {
    const hi = await remux(['client', 'run', 'laptop', '--', 'cat'], { env: gw.env, input: 'hi\n' });
    assert.equal(hi.code, 0, hi.stderr);
    assert.equal(hi.stdout, 'hi\n');
    const input = randomBytes(6 << 20);
    for (const via of ['launcher', 'node'] as const) {
      const child = spawnRemux(['client', 'run', 'laptop', '--', 'cat'], { env: gw.env, via });
      const out: Buffer[] = [];
      child.stdout!.on('data', (d: Buffer) => out.push(d));
      const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
      const started = performance.now();
      child.stdin!.end(input);
      assert.equal(await exited, 0, via);
      const seconds = (performance.now() - started) / 1000;
      const got = Buffer.concat(out);
      assert.equal(got.length, input.length, via);
      assert.ok(got.equals(input), `${via}: the bytes differ`);
      console.log(`# ${via}: 6 MiB of stdin to cat on the agent and back through the daemon in ${seconds.toFixed(2)} s (${(6 / seconds).toFixed(1)} MiB/s each way)`);
    }
  });

  test('stdin under credit: a command that does not read takes no more than the windows; the caller ending it stops the stream', async () => {
    // An endless writer that counts what the client process took from its pipe.
    const feed = (child: ChildProcess): (() => number) => {
      let taken = 0;
      const block = Buffer.alloc(64 << 10, 0x61);
      const more = (): void => {
        while (child.stdin!.writable && child.stdin!.write(block, () => (taken += block.length)));
      };
      child.stdin!.on('drain', more);
      child.stdin!.on('error', () => undefined);
      more();
      return () => taken;
    };
    const idle = spawnRemux(['client', 'run', 'laptop', '--', 'sleep 1.5'], { env: gw.env });
    const idleTaken = feed(idle);
    const idleExit = new Promise<number | null>((resolve) => idle.once('exit', resolve));
    assert.equal(await idleExit, 0, 'the command ends while its stdin is still open');
    assert.ok(idleTaken() < 2 << 20, `the client took ${idleTaken()} bytes of input nobody read`);

    const reader = spawnRemux(['client', 'run', 'laptop', '--', 'cat'], { env: gw.env });
    const taken = feed(reader);
    let seen = 0;
    reader.stdout!.on('data', (d: Buffer) => (seen += d.length));
    const exited = new Promise<number | null>((resolve) => reader.once('exit', resolve));
    await waitFor('input to flow', () => Promise.resolve(seen > 4 << 20));
    const interrupted = Date.now();
    reader.kill('SIGINT');
    assert.equal(await exited, 130);
    assert.ok(Date.now() - interrupted < 3000, `took ${Date.now() - interrupted} ms`);
    await waitFor('the agent to record cat as ended', async () => /"argv":\["cat"\].*?"exitCode":130/.test((await remux(['audit', 'ls', '--json'], { env: ag.env })).stdout));
    const after = taken();
    await sleep(300);
    assert.ok(taken() - after <= 128 << 10, 'the client no longer reads its stdin');
    reader.kill('SIGKILL');
  });

  test('a client that stops reading stops the command on the agent; nothing is lost', async () => {
    await assertSlowClientHoldsCommand(gw.env, 'laptop', 48 << 20);
  });

  test('an agent killed mid-command: the caller gets exit 255 at once, saying it may have run; the daemon restarted: the agent comes back', async () => {
    const running = remux(['client', 'run', 'laptop', '--', 'sleep 30'], { env: gw.env });
    await sleep(700);
    const started = Date.now();
    agent.child.kill('SIGKILL');
    const r = await running;
    assert.equal(r.code, 255, r.stderr);
    assert.match(r.stderr, /agent laptop disconnected .*may have run/);
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    await waitFor('the host to show as down', async () => !(await hostRow()).connected);
    const check = await remux(['hosts', 'check', 'laptop'], { env: gw.env });
    assert.equal(check.code, 255, check.stdout + check.stderr);
    assert.match(check.stdout, /^laptop {2}unreachable {2}\d+ms {2}agent laptop is not connected \(.*\); start it with: remux agent --gateway URL --name laptop/);

    agent = d.startAgent();
    await waitFor('the new agent to connect', async () => (await hostRow()).connected);
    // The daemon goes away and comes back on the same address: the agent dials again by itself.
    const port = new URL(d.url.replace('wss:', 'https:')).port;
    assert.equal((await remux(['daemon', 'stop'], { env: gw.env })).code, 0);
    await d.startDaemon(`127.0.0.1:${port}`);
    await waitFor('the agent to reconnect', async () => (await hostRow()).connected, 20_000);
    assert.match(agent.output(), /connecting again in \d+ ms/);
    const again = await remux(['client', 'run', 'laptop', '--', 'echo', 'back'], { env: gw.env });
    assert.equal(again.stdout, 'back\n', again.stderr);
  });

  test('the agent refuses to start on a token file others can read, and a wrong token ends it with 77', async () => {
    const loose = join(ag.home, 'loose.token');
    writeFileSync(loose, d.token);
    chmodSync(loose, 0o644);
    const a = await remux(['agent', '--gateway', d.url, '--name', 'laptop', '--token-file', loose], { env: agentEnv() });
    assert.equal(a.code, 2);
    assert.match(a.stderr, /readable by others \(mode 644\)\nhint: chmod 600/);
    const wrong = join(ag.home, 'wrong.token');
    writeFileSync(wrong, 'rmx_wrong', { mode: 0o600 });
    const b = await remux(['agent', '--gateway', d.url, '--name', 'laptop', '--token-file', wrong, '--ca-file', d.caFile], { env: agentEnv() });
    assert.equal(b.code, 77, b.stderr);
    assert.match(b.stderr, /refused the connection \(HTTP 401: the token matches no agent host/);
    // laptop's token under another name: what to change, at once (exit 2), not an error to retry.
    const renamed = await remux(['agent', '--gateway', d.url, '--name', 'desk', '--token-file', tokenFile, '--ca-file', d.caFile], { env: agentEnv(), timeoutMs: 10_000 });
    assert.equal(renamed.code, 2, renamed.stderr);
    assert.match(renamed.stderr, /remux: the gateway refused this agent: this token is for agent laptop, not desk\nhint: run it with --name laptop, or make a token for desk on the gateway: remux agent token desk\n/);
    const plain = await remux(['agent', '--gateway', 'ws://gw.example.com:7777', '--name', 'laptop', '--token-file', tokenFile], { env: agentEnv() });
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /plain ws:\/\/ would send the agent token in clear/);
    const missing = await remux(['agent', '--gateway', d.url], { env: agentEnv() });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing --name, --token-file/);
  });

  test("the gateway's own certificate: untrusted without --ca-file, or with another one, ends the agent at once with what to do (exit 2)", async () => {
    const dial = (...more: string[]) => remux(['agent', '--gateway', d.url, '--name', 'laptop', '--token-file', tokenFile, ...more], { env: agentEnv(), timeoutMs: 10_000 });
    const none = await dial();
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, /remux: the gateway's certificate is not trusted: self-signed certificate in certificate chain\nhint: .*copy its \$REMUX_HOME\/tls\/cert\.pem here and add --ca-file FILE/);
    const other = join(ag.home, 'other.pem');
    writeFileSync(other, (await generate([{ name: 'commonName', value: 'remux' }], { keyType: 'ec' })).cert);
    const wrong = await dial('--ca-file', other);
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(wrong.stderr, new RegExp(`hint: ${other} does not hold the certificate 127\\.0\\.0\\.1:\\d+ shows`));
    writeFileSync(join(ag.home, 'not.pem'), 'not a certificate\n');
    const garbage = await dial('--ca-file', join(ag.home, 'not.pem'));
    assert.equal(garbage.code, 2);
    assert.match(garbage.stderr, /--ca-file \S+not\.pem: not a PEM certificate/);
  });

  test('the wrong scheme ends the agent at once with the one to use; a gateway that is down is waited for, saying so', async () => {
    const port = new URL(d.url).port;
    const dial = (gateway: string) => remux(['agent', '--gateway', gateway, '--name', 'laptop', '--token-file', tokenFile, '--ca-file', d.caFile], { env: agentEnv(), timeoutMs: 10_000 });
    // ws:// to the daemon's TLS port: it hangs up on a plain handshake, which retrying never changes.
    const plainToTls = await dial(`ws://127.0.0.1:${port}`);
    assert.equal(plainToTls.code, 2, plainToTls.stderr);
    assert.match(plainToTls.stderr, new RegExp(`remux: 127\\.0\\.0\\.1:${port} serves TLS: plain ws:// cannot talk to it\nhint: dial wss://127\\.0\\.0\\.1:${port} \\(with --ca-file`));
    assert.doesNotMatch(plainToTls.stderr, /connecting again/);
    // wss:// to a plain HTTP port (a gateway with http.tls: false).
    const plain = createServer((_req, res) => res.end('plain\n'));
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const plainPort = (plain.address() as AddressInfo).port;
    try {
      const tlsToPlain = await dial(`wss://127.0.0.1:${plainPort}`);
      assert.equal(tlsToPlain.code, 2, tlsToPlain.stderr);
      assert.match(tlsToPlain.stderr, new RegExp(`remux: 127\\.0\\.0\\.1:${plainPort} does not speak TLS \\(it answered wss:// in plain text\\).*\nhint: dial ws://127\\.0\\.0\\.1:${plainPort} \\(plain`));
      assert.doesNotMatch(tlsToPlain.stderr, /EPROTO|connecting again/);
    } finally {
      plain.close();
    }
    // Nothing listening (the gateway down or restarting): retried, and the log says why.
    const down = spawnRemux(['agent', '--gateway', `ws://127.0.0.1:${plainPort}`, '--name', 'laptop', '--token-file', tokenFile], { env: agentEnv() });
    let log = '';
    down.stderr!.setEncoding('utf8').on('data', (c: string) => (log += c));
    try {
      await waitFor('the agent to retry a gateway that is down', () => Promise.resolve(/connecting again/.test(log)));
      assert.match(log, new RegExp(`connection to ws://127\\.0\\.0\\.1:${plainPort} refused: nothing listens on 127\\.0\\.0\\.1:${plainPort} \\(the gateway's daemon is down, or listens on another port\\); waiting for it; connecting again in \\d+ ms`));
      assert.equal(down.exitCode, null, 'still running');
    } finally {
      down.kill('SIGTERM');
    }
  });
});
