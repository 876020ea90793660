import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError } from '../../src/config/source.js';
import {
  addHost,
  hostsFile,
  InventoryError,
  loadInventory,
  parseHostSpec,
  parseLabels,
  removeHost,
  select,
  type HostEntry,
  type Inventory,
  type SshHostEntry,
} from '../../src/hosts/inventory.js';

const root = mkdtempSync(join(tmpdir(), 'remux-inventory-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

/** Writes `text` as a fresh YAML file and returns its path; null: a path whose directory does not exist yet. */
function hostsYaml(text: string | null): string {
  counter += 1;
  if (text === null) return join(root, `case-${counter}`, 'hosts.yaml');
  const file = join(root, `case-${counter}.yaml`);
  writeFileSync(file, text);
  return file;
}

function ssh(entry: HostEntry | undefined): SshHostEntry {
  assert.ok(entry, 'host missing');
  assert.equal(entry.transport, 'ssh');
  return entry as SshHostEntry;
}

/** Asserts that loading fails with a ConfigError at `line` whose message matches `detail`. */
function assertConfigError(text: string, line: number, detail: RegExp): void {
  const file = hostsYaml(text);
  assert.throws(
    () => loadInventory(file, {}),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.equal(err.file, file);
      assert.equal(err.line, line, `wrong line in: ${err.message}`);
      assert.match(err.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}: `));
      assert.match(err.detail, detail);
      return true;
    },
  );
}

const names = (hosts: HostEntry[]): string[] => hosts.map((h) => h.name);

describe('hosts.yaml loading', () => {
  test('hostsFile lives in REMUX_HOME', () => {
    assert.equal(hostsFile({ REMUX_HOME: '/srv/remux' }), '/srv/remux/hosts.yaml');
  });

  test('a missing file is an empty inventory', () => {
    const file = hostsYaml(null);
    assert.deepEqual(loadInventory(file, {}), { file, hosts: [] });
  });

  test('an empty or comment-only file is an empty inventory, and so is "hosts:" with no value', () => {
    for (const text of ['', '# nothing yet\n', 'hosts:\n', 'hosts: {}\n']) {
      assert.deepEqual(loadInventory(hostsYaml(text), {}).hosts, [], JSON.stringify(text));
    }
  });

  test('a full file loads with defaults applied', () => {
    const file = hostsYaml(`# fleet
hosts:
  web1:
    address: 10.0.0.5
    port: 2222
    user: ops
    identity: ~/.ssh/id_ed25519
    labels: { env: prod, role: web }
    jump: bastion
  bastion:
    address: bastion.example.com
    agent: true
  db:
    address: "fe80::1"
    password_env: DB_SSH_PASSWORD
  keys:
    address: keys.internal
    identity: keys/id_rsa
  gateway:
    transport: local
    labels: { role: gateway }
`);
    const inv = loadInventory(file, {});
    assert.deepEqual(names(inv.hosts), ['web1', 'bastion', 'db', 'keys', 'gateway']);
    assert.deepEqual(inv.hosts[0], {
      name: 'web1',
      transport: 'ssh',
      address: '10.0.0.5',
      port: 2222,
      user: 'ops',
      auth: { method: 'identity', file: join(homedir(), '.ssh/id_ed25519') },
      labels: { env: 'prod', role: 'web' },
      jump: 'bastion',
      builtin: false,
    });
    const bastion = ssh(inv.hosts[1]);
    assert.equal(bastion.port, 22);
    assert.equal(bastion.user, userInfo().username);
    assert.deepEqual(bastion.auth, { method: 'agent' });
    assert.deepEqual(bastion.labels, {});
    assert.equal(bastion.jump, null);
    assert.deepEqual(ssh(inv.hosts[2]).auth, { method: 'password', env: 'DB_SSH_PASSWORD' });
    assert.deepEqual(ssh(inv.hosts[3]).auth, { method: 'identity', file: join(root, 'keys/id_rsa') }, 'relative to the file');
    assert.deepEqual(inv.hosts[4], { name: 'gateway', transport: 'local', labels: { role: 'gateway' }, builtin: false });
  });

  test('no auth key means ssh defaults', () => {
    const inv = loadInventory(hostsYaml('hosts:\n  a:\n    address: a.example\n'), {});
    assert.deepEqual(ssh(inv.hosts[0]).auth, { method: 'default' });
  });

  test('${VAR} references are expanded from the environment', () => {
    const inv = loadInventory(hostsYaml('hosts:\n  a:\n    address: ${WEB_ADDR}\n    port: ${WEB_PORT:-22}\n'), { WEB_ADDR: '192.168.1.9' });
    const a = ssh(inv.hosts[0]);
    assert.equal(a.address, '192.168.1.9');
    assert.equal(a.port, 22);
  });

  test('tmux_socket (a -L name or a -S path) and tmux_users, on ssh and local hosts', () => {
    const inv = loadInventory(
      hostsYaml('hosts:\n  a:\n    address: a.example\n    tmux_socket: work\n    tmux_users: [ops, deploy]\n  b:\n    transport: local\n    tmux_socket: /run/tmux/s-1\n  c:\n    address: c.example\n'),
      {},
    );
    assert.deepEqual(inv.hosts.map((h) => [h.name, h.tmuxSocket, h.tmuxUsers]), [
      ['a', { kind: 'name', name: 'work' }, ['ops', 'deploy']],
      ['b', { kind: 'path', path: '/run/tmux/s-1' }, undefined],
      ['c', undefined, undefined],
    ]);
  });

  describe('errors carry file:line', () => {
    test('bad tmux_socket and tmux_users', () => {
      const host = 'hosts:\n  web1:\n    address: a.example\n';
      assertConfigError(`${host}    tmux_socket: "-x"\n`, 4, /hosts\.web1\.tmux_socket: bad tmux_socket: a socket name \(tmux -L\)/);
      assertConfigError(`${host}    tmux_socket: "a b"\n`, 4, /bad tmux_socket/);
      assertConfigError(`${host}    tmux_socket: /run/../etc/x\n`, 4, /path segment "\.\."/);
      assertConfigError(`${host}    tmux_socket: /run//x\n`, 4, /path segment ""/);
      assertConfigError(`${host}    tmux_socket: "/run/x y"\n`, 4, /path segment "x y"/);
      assertConfigError(`${host}    tmux_users: []\n`, 4, /list at least one user/);
      assertConfigError(`${host}    tmux_users: [ops, ops]\n`, 4, /listed twice/);
      assertConfigError(`${host}    tmux_users:\n      - ops\n      - "-u"\n`, 6, /hosts\.web1\.tmux_users\[1\]: bad tmux user/);
    });

    test('bad address', () => {
      assertConfigError('hosts:\n  web1:\n    address: 10.0.0.256\n', 3, /hosts\.web1\.address: not a hostname or IP address/);
      assertConfigError('hosts:\n  web1:\n    port: 22\n    address: "web 1"\n', 4, /not a hostname or IP address/);
      assertConfigError('hosts:\n  web1:\n    address: -oProxyCommand=x\n', 3, /not a hostname/);
    });

    test('missing address', () => {
      assertConfigError('hosts:\n  web1:\n    port: 22\n', 2, /hosts\.web1\.address: missing/);
    });

    test('unknown key, in a host and at the top level, naming the allowed keys', () => {
      assertConfigError('hosts:\n  web1:\n    address: a.example\n    hostname: b\n', 4, /hosts\.web1\.hostname: unknown key \(allowed keys: address, port/);
      assertConfigError('hosts: {}\ndefaults:\n  port: 22\n', 2, /defaults: unknown key/);
    });

    test('jump cycle, including a host jumping through itself', () => {
      assertConfigError(
        'hosts:\n  a:\n    address: a.example\n    jump: b\n  b:\n    address: b.example\n    jump: c\n  c:\n    address: c.example\n    jump: a\n',
        4,
        /hosts\.a\.jump: jump cycle: a -> b -> c -> a/,
      );
      assertConfigError('hosts:\n  a:\n    address: a.example\n  self:\n    address: s.example\n    jump: self\n', 6, /jump cycle: self -> self/);
    });

    test('a host leading into a cycle reports the cycle once', () => {
      const file = hostsYaml('hosts:\n  in:\n    address: i.example\n    jump: a\n  a:\n    address: a.example\n    jump: b\n  b:\n    address: b.example\n    jump: a\n');
      assert.throws(
        () => loadInventory(file, {}),
        (err: unknown) => err instanceof ConfigError && err.issues.length === 1 && /jump cycle: a -> b -> a/.test(err.detail) && err.line === 7,
      );
    });

    test('unknown or local jump host', () => {
      assertConfigError('hosts:\n  a:\n    address: a.example\n    jump: nowhere\n', 4, /hosts\.a\.jump: jump host "nowhere" is not in the inventory/);
      assertConfigError('hosts:\n  a:\n    address: a.example\n    jump: localhost\n', 4, /the local host cannot be a jump host/);
      assertConfigError('hosts:\n  g:\n    transport: local\n  a:\n    address: a.example\n    jump: g\n', 6, /uses transport local/);
    });

    // The key named in the message is source.ts's wording; this file guarantees the line.
    test('duplicate label key', () => {
      assertConfigError('hosts:\n  web1:\n    address: a.example\n    labels: { env: prod, env: dev }\n', 4, /duplicate key env \(first at line 4\)/);
      assertConfigError('hosts:\n  web1:\n    address: a.example\n    labels:\n      env: prod\n      env: dev\n', 6, /duplicate key env \(first at line 5\)/);
    });

    test('duplicate host name', () => {
      assertConfigError('hosts:\n  web1:\n    address: a.example\n  web1:\n    address: b.example\n', 4, /duplicate key web1 \(first at line 2\)/);
    });

    test('bad label keys and values', () => {
      assertConfigError('hosts:\n  web1:\n    address: a.example\n    labels:\n      "bad key": x\n', 5, /bad label key/);
      assertConfigError('hosts:\n  web1:\n    address: a.example\n    labels:\n      env: "prod/eu"\n', 5, /hosts\.web1\.labels\.env: bad label value/);
      assertConfigError('hosts:\n  web1:\n    address: a.example\n    labels:\n      tier: 1\n', 5, /label values are strings: quote numbers/);
    });

    test('bad and reserved host names', () => {
      assertConfigError('hosts:\n  ok:\n    address: a.example\n  "web 1":\n    address: b.example\n', 4, /bad host name "web 1"/);
      assertConfigError('hosts:\n  -web:\n    address: b.example\n', 2, /bad host name/);
      assertConfigError('hosts:\n  all:\n    address: b.example\n', 2, /"all" is reserved/);
      assertConfigError('hosts:\n  localhost:\n    address: 127.0.0.1\n', 2, /"localhost" is reserved/);
      assertConfigError('hosts:\n  Local:\n    address: 127.0.0.1\n', 2, /"Local" is reserved/);
      assertConfigError(`hosts:\n  ${'a'.repeat(65)}:\n    address: b.example\n`, 2, /bad host name/);
    });

    test('auth: at most one method, and password_env names a variable', () => {
      assertConfigError('hosts:\n  a:\n    address: a.example\n    identity: ~/.ssh/k\n    agent: true\n', 5, /hosts\.a\.agent: use only one of/);
      assertConfigError('hosts:\n  a:\n    address: a.example\n    password_env: "not a name"\n', 4, /environment variable name/);
      const agentOff = loadInventory(hostsYaml('hosts:\n  a:\n    address: a.example\n    identity: /k\n    agent: false\n'), {});
      assert.deepEqual(ssh(agentOff.hosts[0]).auth, { method: 'identity', file: '/k' }, 'agent: false is not a second method');
    });

    test('port and user', () => {
      assertConfigError('hosts:\n  a:\n    address: a.example\n    port: 70000\n', 4, /hosts\.a\.port/);
      assertConfigError('hosts:\n  a:\n    address: a.example\n    port: "22"\n', 4, /expected number/);
      assertConfigError('hosts:\n  a:\n    address: a.example\n    user: -oops\n', 4, /bad user name/);
    });

    test('transports: local takes no ssh settings; agent takes a token hash and no ssh settings', () => {
      const hash = 'a'.repeat(64);
      assertConfigError('hosts:\n  g:\n    transport: local\n    address: 10.0.0.1\n', 4, /hosts\.g\.address: not used with transport local/);
      assertConfigError(`hosts:\n  g:\n    address: 10.0.0.1\n    transport: agent\n    token_sha256: ${hash}\n`, 3, /hosts\.g\.address: not used with transport agent/);
      assertConfigError('hosts:\n  g:\n    transport: agent\n', 2, /hosts\.g\.token_sha256: missing/);
      assertConfigError('hosts:\n  g:\n    transport: agent\n    token_sha256: secret\n', 4, /expected the 64 hex digits/);
      assertConfigError(`hosts:\n  g:\n    address: 10.0.0.1\n    token_sha256: ${hash}\n`, 4, /hosts\.g\.token_sha256: only used with transport agent/);
      assertConfigError('hosts:\n  g:\n    address: 10.0.0.1\n    transport: telnet\n', 4, /hosts\.g\.transport/);
    });

    test('several problems are all reported, sorted by line', () => {
      const file = hostsYaml('hosts:\n  a:\n    address: 10.0.0.999\n  b:\n    address: b.example\n    colour: red\n');
      assert.throws(
        () => loadInventory(file, {}),
        (err: unknown) => err instanceof ConfigError && err.issues.map((i) => i.line).join(',') === '3,6',
      );
    });
  });
});

describe('addHost / removeHost', () => {
  test('creates the file (mode 0600) and the directory', () => {
    const file = hostsYaml(null);
    assert.equal(addHost(file, { name: 'web1', address: '10.0.0.5', user: 'ops', port: 22, identity: '~/.ssh/id_ed25519', labels: { env: 'prod' } }, { env: {} }), 'added');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const inv = loadInventory(file, {});
    assert.deepEqual(names(inv.hosts), ['web1']);
    const web1 = ssh(inv.hosts[0]);
    assert.equal(web1.user, 'ops');
    assert.deepEqual(web1.labels, { env: 'prod' });
    const text = readFileSync(file, 'utf8');
    assert.match(text, /^# remux host inventory/);
    assert.match(text, /labels: \{ env: prod \}/, 'labels are written in flow style');
    assert.doesNotMatch(text, /transport/, 'defaults are not written');
  });

  test('keeps comments, other hosts and the file\'s mode when adding to an existing file', () => {
    const file = hostsYaml('# Production fleet: ask #ops before changing.\nhosts:\n  # the bastion\n  bastion:\n    address: bastion.example.com # public\n');
    chmodSync(file, 0o640);
    addHost(file, { name: 'web1', address: 'web1.internal', jump: 'bastion' }, { env: {} });
    const text = readFileSync(file, 'utf8');
    assert.match(text, /^# Production fleet: ask #ops before changing\.\n/);
    assert.match(text, /# the bastion\n/);
    assert.match(text, /bastion\.example\.com # public/);
    assert.deepEqual(names(loadInventory(file, {}).hosts), ['bastion', 'web1']);
    assert.equal(statSync(file).mode & 0o777, 0o640, 'the mode it was given');
  });

  test('"hosts:" with no value becomes a map, keeping its comment', () => {
    const file = hostsYaml('# top\nhosts: # the fleet\n');
    addHost(file, { name: 'x', address: 'x.example' }, { env: {} });
    assert.equal(readFileSync(file, 'utf8'), '# top\nhosts:\n  # the fleet\n  x:\n    address: x.example\n');
  });

  test('refuses a duplicate name unless replace is given', () => {
    const file = hostsYaml(null);
    addHost(file, { name: 'web1', address: '10.0.0.5' }, { env: {} });
    const before = readFileSync(file, 'utf8');
    assert.throws(() => addHost(file, { name: 'web1', address: '10.0.0.6' }, { env: {} }), (err: unknown) => err instanceof InventoryError && /already exists/.test(err.message));
    assert.equal(readFileSync(file, 'utf8'), before);
    assert.equal(addHost(file, { name: 'web1', address: '10.0.0.6', port: 2200 }, { replace: true, env: {} }), 'replaced');
    const web1 = ssh(loadInventory(file, {}).hosts[0]);
    assert.equal(web1.address, '10.0.0.6');
    assert.equal(web1.port, 2200);
  });

  test('validates the input and the result; a refused add leaves the file untouched', () => {
    const file = hostsYaml('hosts:\n  a:\n    address: a.example\n');
    const before = readFileSync(file, 'utf8');
    const refuse = (input: Parameters<typeof addHost>[1], message: RegExp): void =>
      assert.throws(() => addHost(file, input, { env: {} }), (err: unknown) => err instanceof InventoryError && message.test(err.message));
    refuse({ name: 'all', address: 'x.example' }, /reserved/);
    refuse({ name: 'b c', address: 'x.example' }, /bad host name/);
    refuse({ name: 'b', address: '300.1.1.1' }, /bad host b: address: not a hostname or IP address/);
    refuse({ name: 'b', address: 'x.example', port: 0 }, /port/);
    refuse({ name: 'b', address: 'x.example', identity: 'k', agent: true }, /use only one of/);
    refuse({ name: 'b', address: 'x.example', jump: 'ghost' }, /cannot add host b: .*jump host "ghost" is not in the inventory/);
    refuse({ name: 'b', address: 'x.example', jump: 'b' }, /jump cycle: b -> b/);
    assert.equal(readFileSync(file, 'utf8'), before);
    assert.deepEqual(readdirSync(root).filter((f) => f.endsWith('.tmp')), [], 'no temp files left behind');
  });

  test('refuses to edit a file that is already broken, reporting its file:line', () => {
    const file = hostsYaml('hosts:\n  a:\n    adress: a.example\n');
    const before = readFileSync(file, 'utf8');
    assert.throws(
      () => addHost(file, { name: 'b', address: 'b.example' }, { env: {} }),
      (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.line === 3 && /hosts\.a\.adress: unknown key/.test(i.detail)),
    );
    assert.equal(readFileSync(file, 'utf8'), before);
  });

  test('keeps ${VAR} references as written, and escapes a literal $ in an identity path', () => {
    const file = hostsYaml('hosts:\n  a:\n    address: ${A_ADDR}\n');
    addHost(file, { name: 'b', address: 'b.example', identity: '/keys/$weird' }, { env: { A_ADDR: 'a.example' } });
    const text = readFileSync(file, 'utf8');
    assert.match(text, /address: \$\{A_ADDR\}/);
    const inv = loadInventory(file, { A_ADDR: 'a.example' });
    assert.deepEqual(ssh(inv.hosts[1]).auth, { method: 'identity', file: '/keys/$weird' });
  });

  test('adds tmux_socket and tmux_users, and refuses bad ones', () => {
    const file = hostsYaml(null);
    addHost(file, { name: 'b1', address: '10.0.0.9', tmuxSocket: 'work', tmuxUsers: ['ops', 'deploy'] }, { env: {} });
    assert.match(readFileSync(file, 'utf8'), /tmux_socket: work\n\s+tmux_users: \[ ops, deploy \]/);
    assert.deepEqual(loadInventory(file, {}).hosts.map((h) => [h.tmuxSocket, h.tmuxUsers]), [[{ kind: 'name', name: 'work' }, ['ops', 'deploy']]]);
    assert.throws(() => addHost(file, { name: 'b2', address: '10.0.0.9', tmuxSocket: '../x' }, { env: {} }), /bad host b2: tmux_socket: bad tmux_socket/);
    assert.throws(() => addHost(file, { name: 'b2', address: '10.0.0.9', tmuxUsers: ['Root'] }, { env: {} }), /bad host b2: tmux_users\[0\]: bad tmux user/);
  });

  test('adds a local-transport host', () => {
    const file = hostsYaml(null);
    addHost(file, { name: 'gw', transport: 'local', labels: { role: 'gateway' } }, { env: {} });
    assert.deepEqual(loadInventory(file, {}).hosts, [{ name: 'gw', transport: 'local', labels: { role: 'gateway' }, builtin: false }]);
  });

  test('removes a host, keeping comments and the file\'s mode; refuses while another host jumps through it', () => {
    const file = hostsYaml('# fleet\nhosts:\n  bastion:\n    address: b.example\n  web1: # behind the bastion\n    address: w.internal\n    jump: bastion\n');
    chmodSync(file, 0o644);
    assert.throws(() => removeHost(file, 'bastion', {}), (err: unknown) => err instanceof InventoryError && /jump host of web1/.test(err.message));
    assert.throws(() => removeHost(file, 'ghost', {}), (err: unknown) => err instanceof InventoryError && /no host named "ghost"/.test(err.message));
    removeHost(file, 'web1', {});
    removeHost(file, 'bastion', {});
    assert.deepEqual(loadInventory(file, {}).hosts, []);
    assert.match(readFileSync(file, 'utf8'), /^# fleet\n/);
    assert.equal(statSync(file).mode & 0o777, 0o644);
    // Adding to the emptied file writes block style again, not a growing flow map.
    addHost(file, { name: 'c', address: 'c.example' }, { env: {} });
    assert.match(readFileSync(file, 'utf8'), /hosts:\n {2}c:\n {4}address: c\.example\n/);
  });

  test('removing from a missing file names the host', () => {
    assert.throws(() => removeHost(hostsYaml(null), 'x', {}), /no host named "x"/);
  });
});

describe('parseHostSpec', () => {
  test('user@address, bracketed IPv6, bare addresses', () => {
    assert.deepEqual(parseHostSpec('ops@10.0.0.5'), { user: 'ops', address: '10.0.0.5' });
    assert.deepEqual(parseHostSpec('ops@[::1]'), { user: 'ops', address: '::1' });
    assert.deepEqual(parseHostSpec('[2001:db8::7]'), { address: '2001:db8::7' });
    assert.deepEqual(parseHostSpec('10.0.0.5'), { address: '10.0.0.5' });
    assert.deepEqual(parseHostSpec('::1'), { address: '::1' });
    assert.deepEqual(parseHostSpec('deploy.bot@web-1.example.com'), { user: 'deploy.bot', address: 'web-1.example.com' });
  });

  test('rejects bad specs with a reason', () => {
    assert.throws(() => parseHostSpec(''), InventoryError);
    assert.throws(() => parseHostSpec('ops@'), /bad address/);
    assert.throws(() => parseHostSpec('@host'), /bad user name/);
    assert.throws(() => parseHostSpec('-oProxyCommand=x@host'), /bad user name/);
    assert.throws(() => parseHostSpec('ops@host:22'), /--port/);
    assert.throws(() => parseHostSpec('ops@[10.0.0.5]'), /only IPv6/);
    assert.throws(() => parseHostSpec('ops@10.0.0.256'), /bad address/);
    assert.throws(() => parseHostSpec('ops@web_1'), /bad address/);
  });
});

describe('parseLabels', () => {
  test('key=value terms', () => {
    assert.deepEqual(parseLabels([]), {});
    assert.deepEqual(parseLabels(['env=prod', 'role=web']), { env: 'prod', role: 'web' });
  });

  test('a key given twice or bad syntax is an error', () => {
    assert.throws(() => parseLabels(['env=prod', 'env=dev']), /label env given twice/);
    for (const bad of ['env', 'env=', '=prod', 'env=prod=eu', 'env:prod', 'bad key=x']) {
      assert.throws(() => parseLabels([bad]), InventoryError, bad);
    }
  });
});

describe('select', () => {
  const file = hostsYaml(`hosts:
  web1:
    address: 10.0.0.1
    labels: { env: prod, role: web }
  web2:
    address: 10.0.0.2
    labels: { env: prod, role: web }
  db1:
    address: 10.0.0.3
    labels: { env: prod, role: db }
  dev1:
    address: 10.0.1.1
    labels: { env: dev }
  bare:
    address: 10.0.2.1
`);
  const inv: Inventory = loadInventory(file, {});
  const pick = (selector: string): string[] => names(select(inv, selector));
  const refuse = (selector: string, message: RegExp, inventory: Inventory = inv): void =>
    assert.throws(() => select(inventory, selector), (err: unknown) => err instanceof InventoryError && message.test(err.message), selector);

  test('all is every inventory host, in file order, without the built-in local host', () => {
    assert.deepEqual(pick('all'), ['web1', 'web2', 'db1', 'dev1', 'bare']);
  });

  test('names and comma lists: order as written, duplicates dropped', () => {
    assert.deepEqual(pick('db1'), ['db1']);
    assert.deepEqual(pick('web2,web1'), ['web2', 'web1']);
    assert.deepEqual(pick('web1, db1 ,web1'), ['web1', 'db1']);
  });

  test('globs on names', () => {
    assert.deepEqual(pick('web*'), ['web1', 'web2']);
    assert.deepEqual(pick('?e*1'), ['web1', 'dev1']);
    assert.deepEqual(pick('db1,web*'), ['db1', 'web1', 'web2']);
    refuse('w.b1', /no host named "w\.b1"/);
    refuse('zz*', /no host matches "zz\*"; hosts in the inventory: web1, web2, db1, dev1, bare \(and the built-in localhost\/local\)/);
  });

  test('label terms AND together', () => {
    assert.deepEqual(pick('env=prod'), ['web1', 'web2', 'db1']);
    assert.deepEqual(pick('env=prod,role=web'), ['web1', 'web2']);
    assert.deepEqual(pick('role=web,env=prod'), ['web1', 'web2']);
    assert.deepEqual(pick('env=prod, role=db'), ['db1']);
  });

  test('!= excludes, and matches hosts without the key', () => {
    assert.deepEqual(pick('env!=prod'), ['dev1', 'bare']);
    assert.deepEqual(pick('env=prod,role!=web'), ['db1']);
    assert.deepEqual(pick('role!=web,role!=db'), ['dev1', 'bare']);
  });

  test('an empty label match lists the labels that exist', () => {
    refuse('env=staging', /^no host matches "env=staging"; labels in the inventory: env=prod, role=web, role=db, env=dev$/);
    refuse('env=dev,role=web', /no host matches "env=dev,role=web"/);
    const noLabels = loadInventory(hostsYaml('hosts:\n  a:\n    address: a.example\n'), {});
    refuse('env=prod', /the inventory has no labels/, noLabels);
  });

  test('an unknown name lists the hosts that exist', () => {
    refuse('web9', /^no host named "web9"; hosts in the inventory: web1, web2, db1, dev1, bare/);
    refuse('web1,web9', /no host named "web9"/);
  });

  test('the built-in local host is selectable by exact name only', () => {
    assert.deepEqual(select(inv, 'localhost'), [{ name: 'localhost', transport: 'local', labels: {}, builtin: true }]);
    assert.deepEqual(pick('local'), ['local']);
    assert.deepEqual(pick('localhost,web1,local'), ['localhost', 'web1'], 'one machine, listed once');
    refuse('loc*', /no host matches "loc\*"/);
  });

  test('ambiguous or malformed selectors are refused', () => {
    refuse('', /empty term/);
    refuse('web1,,web2', /empty term/);
    refuse('web1,', /empty term/);
    refuse('all,web1', /"all" selects every host; it cannot be combined/);
    refuse('web1,env=prod', /mixes host names and labels/);
    refuse('env==prod', /bad label term/);
    refuse('=prod', /bad label term/);
    refuse('env=', /bad label term/);
    refuse('!web1', /bad selector term "!web1"/);
    refuse('web 1', /bad selector term/);
  });

  test('an empty inventory: all is an error that says how to add a host; localhost still works', () => {
    const empty: Inventory = { file: '/x/hosts.yaml', hosts: [] };
    refuse('all', /no hosts in the inventory \(\/x\/hosts\.yaml\); add one with: remux hosts add NAME USER@ADDRESS$/, empty);
    refuse('web1', /the inventory is empty \(only the built-in localhost\/local exists\); add one with: remux hosts add NAME USER@ADDRESS$/, empty);
    assert.deepEqual(names(select(empty, 'localhost')), ['localhost']);
  });

  test('long lists in errors are cut short', () => {
    const many: Inventory = {
      file: 'f',
      hosts: Array.from({ length: 30 }, (_, i) => ({ name: `h${i}`, transport: 'local' as const, labels: {}, builtin: false })),
    };
    refuse('nope', /h19, … \(10 more\)/, many);
  });
});
