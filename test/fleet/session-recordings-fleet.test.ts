// `sessions.record: sessions` on a real SSH host (test/fleet), with the CLI served by the daemon: a
// session created with `remux session new` is recorded by a control client over SSH, as the login user
// and through real sudo as another tmux user; `session send` output (nobody attached) is in the file,
// `session ls` counts no client, and the recording ends, audited, when `session kill` ends the session.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { HostSessions } from '../../src/sessions/service.js';
import { remux, tempHome } from '../support/cli.js';
import { startFleet, type Fleet } from './fleet.js';

const isRoot = process.getuid?.() === 0;
const NOBODY_UID = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());

interface Listed {
  id: number;
  status: string;
  operation: string;
  principal: string;
  resource: string | null;
  recording: string | null;
  exitCode: number | null;
  error: string | null;
}

describe('whole-session recordings over SSH', { timeout: 90_000, skip: isRoot ? false : 'needs root (a sudoers of its own on a fleet host)' }, () => {
  let fleet: Fleet;
  const h = tempHome();
  const env = (): Record<string, string> => ({ ...h.env, REMUX_KNOWN_HOSTS: fleet.knownHostsFile });
  const socketName = `rmx-test-${randomBytes(4).toString('hex')}`;
  const audit = async (): Promise<Listed[]> => {
    const r = await remux(['audit', 'ls', '--json', '--limit', '0'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Listed);
  };
  const cast = (id: string): string => readFileSync(join(h.home, 'recordings', `${id}.cast`), 'utf8');
  /** The recording's output events, joined. */
  const output = (id: string): string =>
    cast(id)
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => JSON.parse(l) as [number, string, string])
      .filter((e) => e[1] === 'o')
      .map((e) => e[2])
      .join('');

  before(async () => {
    fleet = await startFleet({ count: 1, sudoers: { h1: 'Defaults env_reset\nroot ALL=(nobody) NOPASSWD: /usr/bin/tmux\n' } });
    const h1 = fleet.hosts[0]!;
    writeFileSync(
      join(h.home, 'hosts.yaml'),
      `hosts:\n  h1:\n    address: ${h1.address}\n    port: ${h1.port}\n    user: ${h1.user}\n    identity: ${h1.identityFile}\n    tmux_socket: ${socketName}\n    tmux_users: [root, nobody]\n`,
    );
    writeFileSync(join(h.home, 'policies.yaml'), 'policies:\n  sess:\n    sandbox: false\n    capabilities:\n      - { operation: execute_binary, resource: sleep|cat }\n      - { operation: write_stdout, resource: null }\n');
    writeFileSync(join(h.home, 'config.yaml'), 'default_policy: sess\nsessions: { sweep_interval_seconds: 3600, record: sessions }\n');
    const start = await remux(['daemon', 'start'], { env: env() });
    assert.equal(start.code, 0, start.stderr);
  });
  after(async () => {
    await remux(['daemon', 'stop'], { env: env() });
    await fleet?.stop();
    rmSync(join('/tmp', `tmux-${NOBODY_UID}`, socketName), { force: true });
    h.remove();
  });

  for (const user of ['root', 'nobody']) {
    test(`as ${user}: recorded from creation over SSH${user === 'root' ? '' : ' through sudo'}, ended with the session`, async () => {
      const name = `rec-${user}`;
      const made = await remux(['session', 'new', name, '--host', 'h1', '--user', user, '--cmd', 'cat'], { env: env() });
      assert.equal(made.code, 0, made.stderr);
      const record = (await audit()).find((a) => a.operation === 'session.record' && a.resource === `${user}@h1:${name}`);
      assert.ok(record, 'the recording is audited by the time `session new` returns');
      assert.equal(record.status, 'incomplete');
      const id = record.recording!;
      assert.ok(existsSync(join(h.home, 'recordings', `${id}.cast`)));

      const sent = await remux(['session', 'send', name, '--host', 'h1', '--user', user, '--', `typed-to-${user}`, 'Enter'], { env: env() });
      assert.equal(sent.code, 0, sent.stderr);
      const both = new RegExp(`typed-to-${user}\r\ntyped-to-${user}\r\n`);
      for (let i = 0; i < 200 && !both.test(output(id)); i++) await sleep(20);
      assert.match(output(id), both, "the terminal's echo and cat's copy are both recorded");

      const ls = await remux(['session', 'ls', '--host', 'h1', '--json', '--refresh'], { env: env() });
      assert.equal(ls.code, 0, ls.stderr);
      const [listed] = JSON.parse(ls.stdout) as HostSessions[];
      const users = listed!.users.find((u) => u.user === user);
      assert.deepEqual(users?.state === 'ok' ? users.sessions.map((s) => [s.name, s.attached]) : users, [[name, 0]]);

      const killed = await remux(['session', 'kill', name, '--host', 'h1', '--user', user, '-f'], { env: env() });
      assert.equal(killed.code, 0, killed.stderr);
      let ended: Listed | undefined;
      for (let i = 0; i < 200 && ended?.status !== 'complete'; i++, await sleep(25)) ended = (await audit()).find((a) => a.id === record.id);
      assert.deepEqual([ended?.status, ended?.exitCode, ended?.error], ['complete', 0, null]);
      const header = JSON.parse(cast(id).split('\n')[0]!) as { remux: { user: string; kind: string } };
      assert.deepEqual([header.remux.user, header.remux.kind], [user, 'session']);
    });
  }
});
