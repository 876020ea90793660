// An agent answers the gateway's path and program questions only within its own policy: a real gateway
// and a real agent whose policy reaches only X/** (a directory under /tmp). What lies outside is refused
// at the gateway naming the agent's policy, and the agent's answers for it carry no realpath; paths inside,
// a symlink in the tree and a `cd` into it included, still resolve and run.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { perform } from '../../src/core/perform.js';
import type { AgentConnection, PendingRequest } from '../../src/gateway/relay/hub.js';
import type { AgentFrame, GatewayFrame } from '../../src/gateway/relay/protocol.js';
import type { PathResolver } from '../../src/policy/types.js';
import { startRelay, type Relay, type StartedAgent } from './harness.js';

const root = realpathSync(mkdtempSync(join(tmpdir(), 'remux-own-answers-')));
const x = join(root, 'x');

/** Agent-side programs: ls and cat only (not head); file operations in x alone. */
const AGENT_POLICY = `policies:
  read_only:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: ls|cat|true }
      - { operation: read_file, resource: ${x}/** }
      - { operation: list_directory, resource: ${x}/** }
      - { operation: write_stdout, resource: null }
`;

/** The gateway allows far more: what the agent does not answer for is refused all the same. A path glob makes it ask where programs are. */
const GATEWAY_POLICY = `policies:
  read_only:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: ls|cat|true|head|/usr/bin/** }
      - { operation: read_file, resource: /** }
      - { operation: list_directory, resource: /** }
      - { operation: write_file, resource: /** }
      - { operation: write_stdout, resource: null }
`;

const REFUSED = "agent laptop's own policy read_only gives no access there";

interface Exchange {
  asked: Extract<GatewayFrame, { type: 'resolve' | 'file-resolve' }>;
  answer: AgentFrame | null;
}

/** Every path question the gateway sends the agent from now on, with the agent's answer as the gateway received it. */
function recordQuestions(conn: AgentConnection): Exchange[] {
  const seen: Exchange[] = [];
  const request = conn.request.bind(conn);
  conn.request = (frame, waiter): number => {
    if (frame.type !== 'resolve' && frame.type !== 'file-resolve') return request(frame, waiter);
    const exchange: Exchange = { asked: { ...frame, id: 0 }, answer: null };
    seen.push(exchange);
    const recording: PendingRequest = {
      onFrame(f) {
        exchange.answer = f;
        return waiter.onFrame(f);
      },
      fail: (err) => waiter.fail(err),
    };
    return request(frame, recording);
  };
  return seen;
}

/** The agent's answers for `path` in the recorded exchanges (either kind of question). */
function answersFor(seen: Exchange[], path: string): unknown[] {
  return seen.flatMap(({ asked, answer }): unknown[] => {
    const at = asked.paths.indexOf(path);
    if (at < 0) return [];
    if (answer?.type === 'resolved') return [answer.paths[at]];
    if (answer?.type === 'file-done') return [answer.resolved?.[at]];
    return [answer];
  });
}

describe("relay: an agent answers path questions only within its own policy", () => {
  let relay: Relay;
  let agent: StartedAgent;
  let seen: Exchange[];
  let resolver: PathResolver;
  const read = (path: string) => perform(relay.ctx, { kind: 'file.read', host: 'laptop', path }, { onStdout: () => {}, onStderr: () => {} });

  before(async () => {
    mkdirSync(join(x, 'dir'), { recursive: true });
    writeFileSync(join(x, 'dir', 'real.txt'), 'inside\n');
    symlinkSync(join(x, 'dir', 'real.txt'), join(x, 'link'));
    symlinkSync('/etc/passwd', join(x, 'out'));
    relay = await startRelay({ gatewayPolicy: GATEWAY_POLICY, agentPolicy: AGENT_POLICY });
    agent = relay.startAgent('laptop');
    await relay.waitConnected('laptop');
    seen = recordQuestions(relay.ctx.registry.agents.get('laptop')!);
    resolver = agent.ctx.host('localhost').resolver;
  });
  after(async () => {
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('a gateway-side read of /etc/passwd is refused naming the agent\'s policy; the agent sent no realpath for it', async () => {
    const r = await read('/etc/passwd');
    assert.equal(r.outcome, 'denied', r.message ?? '');
    assert.equal(r.exitCode, 77);
    assert.match(r.message ?? '', /read_file \/etc\/passwd: cannot be checked: agent laptop's own policy read_only gives no access there/);
    const answers = answersFor(seen, '/etc/passwd');
    assert.ok(answers.length > 0, 'the gateway asked the agent');
    for (const a of answers) assert.deepEqual(a, { error: REFUSED });
  });

  test('`ls /root` is refused naming the agent\'s policy; the agent sent no realpath for /root', async () => {
    const r = await relay.run('laptop', 'ls /root');
    assert.equal(r.outcome, 'denied', r.message ?? r.stderr);
    assert.equal(r.exitCode, 77);
    assert.match(r.message ?? '', /list_directory \/root: cannot be checked: agent laptop's own policy read_only gives no access there/);
    const answers = answersFor(seen, '/root');
    assert.ok(answers.length > 0, 'the gateway asked the agent');
    for (const a of answers) assert.deepEqual(a, { error: REFUSED });
  });

  test('a link in the tree leading outside it: refused, and where it leads is not told', async () => {
    const r = await read(join(x, 'out'));
    assert.equal(r.outcome, 'denied', r.message ?? '');
    assert.match(r.message ?? '', /agent laptop's own policy read_only gives no access there/);
    for (const a of answersFor(seen, join(x, 'out'))) assert.deepEqual(a, { error: REFUSED });
    const cat = await relay.run('laptop', `cat ${join(x, 'out')}`);
    assert.equal(cat.exitCode, 77, cat.stderr);
    assert.doesNotMatch(JSON.stringify(seen.map((e) => e.answer)), /\/etc\/passwd/);
  });

  test('paths inside still resolve as the agent sees them: a symlink in the tree is followed, a cd into it works', async () => {
    const r = await read(join(x, 'link'));
    assert.equal(r.outcome, 'ok', r.message ?? '');
    assert.equal(r.content?.toString(), 'inside\n');
    assert.equal(r.path, resolver.realpath(join(x, 'link'), '/'));
    assert.deepEqual(answersFor(seen, join(x, 'link')).at(-1), { real: resolver.realpath(join(x, 'link'), '/'), finalLink: true });
    const cat = await relay.run('laptop', `cat ${join(x, 'link')}`);
    assert.equal(cat.exitCode, 0, cat.message ?? cat.stderr);
    assert.equal(cat.stdout, 'inside\n');
    assert.deepEqual(answersFor(seen, join(x, 'link')).at(-1), { path: resolver.realpath(join(x, 'link'), '/') });
    const cd = await relay.run('laptop', `cd ${join(x, 'dir')} && cat real.txt && ls`);
    assert.equal(cd.exitCode, 0, cd.message ?? cd.stderr);
    assert.equal(cd.stdout, 'inside\nreal.txt\n');
  });

  test('a path the agent answers for is still its own perform\'s to allow: a write in the tree it only reads is refused there', async () => {
    const target = join(x, 'new.txt');
    const r = await perform(relay.ctx, { kind: 'file.write', host: 'laptop', path: target, content: 'x' }, { onStdout: () => {}, onStderr: () => {} });
    assert.equal(r.exitCode, 77, r.message ?? '');
    assert.match(r.message ?? '', /agent laptop's own policy: .*write_file/);
    assert.deepEqual(answersFor(seen, target).at(-1), { real: target, finalLink: false });
  });

  test('where a program is: told only for one the agent\'s policy lets run; the gateway then refuses the others naming it', async () => {
    const conn = relay.ctx.registry.agents.get('laptop')!;
    const answer = await new Promise<AgentFrame>((resolve, reject) => {
      conn.request({ type: 'resolve', paths: [], names: ['ls', 'head', 'no-such-program-here'] }, { onFrame: (f) => (resolve(f), true), fail: reject });
    });
    assert.equal(answer.type, 'resolved');
    const ls = resolver.which('ls');
    assert.ok(ls !== null);
    const refused = { error: "agent laptop's own policy read_only lets no program of that name run" };
    assert.deepEqual(answer.type === 'resolved' && answer.names, [{ path: ls }, refused, refused]);
    const head = await relay.run('laptop', 'head -c 1 /dev/null');
    assert.equal(head.outcome, 'denied', head.message ?? head.stderr);
    assert.match(head.message ?? '', /execute_binary head: cannot be checked: agent laptop's own policy read_only lets no program of that name run/);
  });
});
