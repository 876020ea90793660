// User: accounts (useradd / usermod / userdel), authorized_keys and sudoers drop-ins on the host
// (remote/tools/user.py). Each method declares the programs it runs and every file it writes: the
// account databases, the home directory, ~user/.ssh/authorized_keys (the home as the host reports it),
// /etc/sudoers.d/NAME. Edits return a diff: their writes `reads` the file too.
import { ArgumentError, lazyTool, line, list, matching, method, oneOf, type Operation } from './method.js';

export interface UserOptions {
  uid?: number;
  /** The primary group (name or gid). */
  group?: string;
  /** Supplementary groups, exactly these. */
  groups?: string[];
  shell?: string;
  /** Default /home/NAME for a new account; an existing account's home is changed (not moved) only when given. */
  home?: string;
  comment?: string;
  system?: boolean;
  /** Create the home directory of a new account (default true). */
  createHome?: boolean;
}

export interface UserState {
  changed: boolean;
  exists: boolean;
  uid?: number;
  gid?: number;
  home?: string;
  shell?: string;
  groups?: string[];
}

export interface FileEdit {
  changed: boolean;
  /** A unified diff of the file, '' when nothing changed. */
  diff: string;
}

const tool = lazyTool('User', 'user.py');
const ACCOUNTS: Operation[] = ['/etc/passwd', '/etc/shadow', '/etc/group', '/etc/gshadow'].map((path) => ({ kind: 'file.write', path }));
const STATES = ['present', 'absent'] as const;

const userName = (v: unknown): string => matching('the user name', v, /^[a-z_][a-z0-9_-]{0,30}\$?$/, 'a user name (lower case letters, digits, _ and -, at most 32)');
const groupName = (v: unknown): string => matching('the group', v, /^([a-z_][a-z0-9_-]{0,30}|\d+)$/, 'a group name or gid');
/** An absolute path with no . or .. segments (a home, a shell). */
const absolute = (what: string, v: unknown): string => {
  const path = line(what, v);
  if (!path.startsWith('/') || path.split('/').some((s) => s === '.' || s === '..')) throw new ArgumentError(`${what}: ${JSON.stringify(v)} is not an absolute path without . or ..`);
  return path;
};
const homeOf = (name: string, o: UserOptions): string => (o.home !== undefined ? absolute('the home directory', o.home) : `/home/${name}`);

function checkOptions(o: UserOptions): void {
  if (o.uid !== undefined && !(Number.isSafeInteger(o.uid) && o.uid >= 0)) throw new ArgumentError(`uid must be a whole number, got ${JSON.stringify(o.uid)}`);
  if (o.group !== undefined) groupName(o.group);
  for (const g of list(o.groups ?? [])) groupName(g);
  if (o.shell !== undefined) absolute('the shell', o.shell);
  if (o.comment !== undefined) matching('the comment', o.comment, /^[^\x00-\x1f\x7f:]*$/, 'one line without ":"');
}

/** An OpenSSH public key line: [options] type base64 [comment]. */
const publicKey = (v: unknown): string => matching('the key', line('the key', v), /(^|\s)(ssh-|ecdsa-|sk-)[\w@.-]+\s+[A-Za-z0-9+/]+={0,3}(\s|$)/, 'an OpenSSH public key line');

const keysPath = (home: string): string => `${home.replace(/\/+$/, '')}/.ssh/authorized_keys`;
const needHome = (user: string, home: string | null): string => {
  if (home === null) throw new ArgumentError(`there is no user ${user} on the host`);
  return home;
};

export const User = {
  /** The account exists with these settings: created with useradd, else only what differs changed with usermod. */
  present: method<[name: string, opts?: UserOptions], UserState>({
    tool,
    name: 'User.present',
    remote: 'present',
    cli: { positional: ['name'], options: { uid: 'number', group: 'string', groups: 'strings', shell: 'string', home: 'string', comment: 'string', system: 'boolean', createHome: 'boolean' } },
    operations: ([name, o = {}]) => {
      checkOptions(o);
      return [{ kind: 'exec', argv: ['useradd'] }, { kind: 'exec', argv: ['usermod'] }, ...ACCOUNTS, { kind: 'file.write', path: homeOf(userName(name), o), tree: true }];
    },
    args: ([name, o = {}]) => [name, { ...o, ...(o.groups !== undefined ? { groups: list(o.groups) } : {}), home: homeOf(name, o), explicitHome: o.home !== undefined }],
  }),

  /** No such account: userdel, with its home directory when removeHome. */
  absent: method<[name: string, opts?: { removeHome?: boolean }], UserState, string | null>({
    tool,
    name: 'User.absent',
    remote: 'absent',
    cli: { positional: ['name'], options: { removeHome: 'boolean' } },
    lookup: { remote: 'home', args: ([name]) => [userName(name)] },
    operations: ([, o = {}], home) => [
      { kind: 'exec', argv: ['userdel'] },
      ...ACCOUNTS,
      ...(o.removeHome && home !== null ? [{ kind: 'file.write' as const, path: home, tree: true }] : []),
    ],
    args: ([name, o = {}]) => [name, o.removeHome === true],
  }),

  /** The key is (or is not) in ~user/.ssh/authorized_keys; the directory 0700 and the file 0600, the user's. */
  authorizedKey: method<[user: string, key: string, opts?: { state?: 'present' | 'absent' }], FileEdit, string | null>({
    tool,
    name: 'User.authorizedKey',
    content: 'diff',
    remote: 'authorizedKey',
    cli: { positional: ['user', 'key'], options: { state: 'string' } },
    lookup: { remote: 'home', args: ([user]) => [userName(user)] },
    operations: ([user, key, o = {}], home) => {
      publicKey(key);
      oneOf('state', o.state ?? 'present', STATES);
      const path = keysPath(needHome(user, home));
      return [{ kind: 'file.write', path, content: key, reads: true }];
    },
    args: ([user, key, o = {}], resolved, home) => [user, key.trim(), o.state ?? 'present', resolved.paths[keysPath(home as string)]],
  }),

  /**
   * /etc/sudoers.d/NAME holds exactly these rules (0440, root's), checked with `visudo -c` before it is
   * put in place: rules visudo refuses are refused and nothing is written. state absent removes it.
   */
  sudoer: method<[name: string, opts: { rules?: string | string[]; state?: 'present' | 'absent' }], FileEdit>({
    tool,
    name: 'User.sudoer',
    content: 'diff',
    remote: 'sudoer',
    cli: { positional: ['name'], options: { rules: 'strings', state: 'string' } },
    operations: ([name, o]) => {
      // sudo skips drop-ins whose name has a dot or ends in ~: such a name would never take effect.
      matching('the drop-in name', name, /^[A-Za-z0-9_-]+$/, 'a sudoers.d file name (letters, digits, _ and -)');
      const state = oneOf('state', o.state ?? 'present', STATES);
      const rules = list(o.rules ?? []).map((r) => line('a sudoers rule', r));
      if (state === 'present' && rules.length === 0) throw new ArgumentError('User.sudoer: give the rules (state present)');
      const path = `/etc/sudoers.d/${name}`;
      return [{ kind: 'exec', argv: ['visudo'] }, { kind: 'file.write', path, content: rules.join('\n'), reads: true }];
    },
    args: ([name, o], resolved) => [name, list(o.rules ?? []), o.state ?? 'present', resolved.paths[`/etc/sudoers.d/${name}`]],
  }),
};
