// Packages: Apt and AptRepository (Debian, Ubuntu), Pacman and PacmanRepository (Arch), on the host
// (remote/tools/apt.py, pacman.py). Installing or removing a package runs its maintainer scripts, which
// may write anywhere: the package methods declare a write_file of the whole system (`/`, as a tree), so
// only a policy that lets the caller write everywhere, with no deny or ask rule for any part of it,
// allows them. Repository methods declare exactly the files they write (and read, for their diff).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ArgumentError, lazyTool, line, list, matching, method, oneOf, type Operation } from './method.js';
import type { FileEdit } from './tools-user.js';

export interface PackageResult {
  changed: boolean;
  /** Each package's installed version afterwards, null when not installed. */
  versions: Record<string, string | null>;
}

export type RepositoryResult = FileEdit;

export interface AptRepositoryOptions {
  uris: string | string[];
  suites: string | string[];
  components?: string | string[];
  /** Default deb. */
  types?: string | string[];
  architectures?: string | string[];
  /** The signing key (ASCII-armored text, or binary): installed as /etc/apt/keyrings/NAME.asc (.gpg) and named by Signed-By. */
  key?: string | Buffer;
}

export interface PacmanRepositoryOptions {
  /** Server = lines, in order. */
  servers?: string | string[];
  /** An Include = file (a mirrorlist) instead of, or besides, servers. */
  include?: string;
  /** SigLevel = … (e.g. "Required DatabaseOptional"). */
  sigLevel?: string;
  /**
   * The repository's signing key, ASCII-armored (the text, or { file } read here): added to pacman's
   * keyring (pacman-key --add) and locally signed (--lsign-key keyFingerprint), unless it holds the key already.
   */
  key?: string | { file: string };
  /** The key's fingerprint (40 hex digits), which --lsign-key trusts; required with key. */
  keyFingerprint?: string;
}

const STATES = ['present', 'absent', 'latest'] as const;
type PackageState = (typeof STATES)[number];
const SYSTEM: Operation = { kind: 'file.write', path: '/', tree: true };
const run = (...programs: string[]): Operation[] => programs.map((program) => ({ kind: 'exec', argv: [program] }));

/** Package names (apt: name[:arch]; pacman: name), never an option. */
function packages(what: RegExp, value: string | readonly string[]): string[] {
  const names = list(value);
  if (names.length === 0) throw new ArgumentError('name at least one package');
  for (const n of names) matching('the package', n, what, 'a package name');
  return names;
}
const APT_NAME = /^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?$/;

/**
 * apt's names. A version (name=VERSION) is refused, not ignored: present and absent look at whether the
 * package is installed, latest at the candidate, so a pin would be reported as holding while another
 * version stays installed.
 */
function aptPackages(value: string | readonly string[]): string[] {
  const pinned = list(value).find((n) => typeof n === 'string' && n.includes('='));
  if (pinned !== undefined) throw new ArgumentError(`the package ${JSON.stringify(pinned)}: a version (=VERSION) is not supported, state looks at the name only; pin versions with apt preferences (/etc/apt/preferences.d)`);
  return packages(APT_NAME, value);
}
const PACMAN_NAME = /^[a-z0-9@_+][a-z0-9@._+-]*$/;

/** A file name under sources.list.d, keyrings or a pacman.conf section. */
const repoName = (v: unknown): string => matching('the repository name', v, /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, 'a repository name (letters, digits, _ . -)');

const aptTool = lazyTool('Apt', 'apt.py');
const pacmanTool = lazyTool('Pacman', 'pacman.py');

export const Apt = {
  /** present: installed (any version); latest: the candidate version; absent: removed. Names only: name=VERSION is refused. */
  package: method<[names: string | string[], opts?: { state?: PackageState }], PackageResult>({
    tool: aptTool,
    name: 'Apt.package',
    remote: 'package',
    cli: { positional: ['names...'], options: { state: 'string' } },
    operations: ([names, o = {}]) => {
      aptPackages(names);
      const state = oneOf('state', o.state ?? 'present', STATES);
      return [...run('apt-get', 'dpkg-query', ...(state === 'latest' ? ['apt-cache'] : [])), SYSTEM];
    },
    args: ([names, o = {}]) => [list(names), o.state ?? 'present'],
  }),
  /** apt-get update; with ttl (seconds), not when the newest package list is younger. changed: the lists changed. */
  update: method<[opts?: { ttl?: number }], { changed: boolean; skipped: boolean }>({
    tool: aptTool,
    name: 'Apt.update',
    remote: 'update',
    cli: { positional: [], options: { ttl: 'number' } },
    operations: ([o = {}]) => {
      if (o.ttl !== undefined && o.ttl < 0) throw new ArgumentError(`ttl must be a number of seconds, got ${JSON.stringify(o.ttl)}`);
      return [...run('apt-get'), { kind: 'file.write', path: '/var/lib/apt/lists', tree: true }];
    },
    args: ([o = {}], resolved) => [o.ttl ?? null, resolved.paths['/var/lib/apt/lists']],
  }),
};

const sourcesPath = (name: string): string => `/etc/apt/sources.list.d/${name}.sources`;
const keyPaths = (name: string): string[] => [`/etc/apt/keyrings/${name}.asc`, `/etc/apt/keyrings/${name}.gpg`];
const ARMORED = /^\s*-----BEGIN PGP PUBLIC KEY BLOCK-----/;

/** The DEB822 stanza; every value one line (a line break would add fields such as Trusted: yes). */
function stanza(o: AptRepositoryOptions, signedBy: string | null): string {
  const field = (name: string, value: string | readonly string[] | undefined): string => {
    if (value === undefined) return '';
    const words = list(value).map((w) => matching(`${name}`, w, /^[^\s\x00-\x1f\x7f]+$/, 'one word without blanks or control characters'));
    if (words.length === 0) throw new ArgumentError(`${name}: give at least one`);
    return `${name}: ${words.join(' ')}\n`;
  };
  if (o.uris === undefined || o.suites === undefined) throw new ArgumentError('AptRepository.present needs uris and suites');
  return field('Types', o.types ?? 'deb') + field('URIs', o.uris) + field('Suites', o.suites) + field('Components', o.components) + field('Architectures', o.architectures) + field('Signed-By', signedBy ?? undefined);
}

/** The key's file: armored text is .asc, anything else .gpg (what apt accepts under either name). */
const keyFile = (name: string, key: string | Buffer): string => (keyPaths(name)[typeof key === 'string' && ARMORED.test(key) ? 0 : 1] as string);

export const AptRepository = {
  /** /etc/apt/sources.list.d/NAME.sources (DEB822), its key under /etc/apt/keyrings; a diff of the sources file. */
  present: method<[name: string, opts: AptRepositoryOptions], RepositoryResult>({
    tool: aptTool,
    name: 'AptRepository.present',
    content: 'diff',
    remote: 'repository',
    cli: { positional: ['name'], options: { uris: 'strings', suites: 'strings', components: 'strings', types: 'strings', architectures: 'strings', key: 'text' } },
    operations: ([name, o]) => {
      const sources = sourcesPath(repoName(name));
      const text = stanza(o, o.key === undefined ? null : keyFile(name, o.key));
      return [{ kind: 'file.write', path: sources, content: text, reads: true }, ...(o.key === undefined ? [] : [{ kind: 'file.write' as const, path: keyFile(name, o.key) }])];
    },
    args: ([name, o], resolved) => {
      const key = o.key === undefined ? null : keyFile(name, o.key);
      return [
        'present',
        resolved.paths[sourcesPath(name)],
        stanza(o, key),
        key === null ? [] : [resolved.paths[key]],
        o.key === undefined ? null : Buffer.from(o.key).toString('base64'),
      ];
    },
  }),
  /** Neither the sources file nor a key of that name. */
  absent: method<[name: string], RepositoryResult>({
    tool: aptTool,
    name: 'AptRepository.absent',
    content: 'diff',
    remote: 'repository',
    cli: { positional: ['name'] },
    operations: ([name]) => [{ kind: 'file.write', path: sourcesPath(repoName(name)), reads: true }, ...keyPaths(name).map((path): Operation => ({ kind: 'file.write', path }))],
    args: ([name], resolved) => ['absent', resolved.paths[sourcesPath(name)], '', keyPaths(name).map((p) => resolved.paths[p]), null],
  }),
};

export const Pacman = {
  /** present: installed (--needed); latest: upgraded when pacman -Qu lists it; absent: removed. */
  package: method<[names: string | string[], opts?: { state?: PackageState }], PackageResult>({
    tool: pacmanTool,
    name: 'Pacman.package',
    remote: 'package',
    cli: { positional: ['names...'], options: { state: 'string' } },
    operations: ([names, o = {}]) => {
      packages(PACMAN_NAME, names);
      oneOf('state', o.state ?? 'present', STATES);
      return [...run('pacman'), SYSTEM];
    },
    args: ([names, o = {}]) => [list(names), o.state ?? 'present'],
  }),
  /** pacman -Sy; changed: a sync database changed. */
  update: method<[], { changed: boolean }>({
    tool: pacmanTool,
    name: 'Pacman.update',
    remote: 'update',
    cli: { positional: [] },
    operations: () => [...run('pacman'), { kind: 'file.write', path: '/var/lib/pacman/sync', tree: true }],
    args: (_, resolved) => [resolved.paths['/var/lib/pacman/sync']],
  }),
};

const PACMAN_CONF = '/etc/pacman.conf';
const EDIT_CONF: Operation[] = [{ kind: 'file.write', path: PACMAN_CONF, reads: true }];

function sectionBody(o: PacmanRepositoryOptions): string[] {
  const servers = list(o.servers ?? []).map((s) => line('a server', s));
  if (servers.length === 0 && o.include === undefined) throw new ArgumentError('PacmanRepository.present needs servers or include');
  return [
    ...(o.sigLevel !== undefined ? [`SigLevel = ${line('sigLevel', o.sigLevel)}`] : []),
    ...servers.map((s) => `Server = ${s}`),
    ...(o.include !== undefined ? [`Include = ${line('include', o.include)}`] : []),
  ];
}

const sectionName = (v: unknown): string => {
  const name = repoName(v);
  if (name === 'options') throw new ArgumentError('[options] is pacman\'s own section, not a repository');
  return name;
};

/** pacman's keyring, which pacman-key writes (its whole directory: trustdb, pubring, …). */
const KEYRING: Operation[] = [...run('pacman-key'), { kind: 'file.write', path: '/etc/pacman.d/gnupg', tree: true }];

/** The key to trust, armored, and its fingerprint (upper case); null without a key. */
function signingKey(o: PacmanRepositoryOptions): { text: string; fingerprint: string } | null {
  if (o.key === undefined) {
    if (o.keyFingerprint !== undefined) throw new ArgumentError('keyFingerprint names the key given as key: give both');
    return null;
  }
  const text = typeof o.key === 'string' ? o.key : keyFileText(o.key.file);
  if (!ARMORED.test(text)) throw new ArgumentError('the key must be ASCII-armored (-----BEGIN PGP PUBLIC KEY BLOCK-----)');
  if (o.keyFingerprint === undefined) throw new ArgumentError('a key needs its keyFingerprint (40 hex digits), which pacman-key --lsign-key trusts');
  const fingerprint = matching('keyFingerprint', o.keyFingerprint.replace(/ /g, ''), /^[0-9A-Fa-f]{40}$/, 'a key fingerprint (40 hex digits)');
  return { text, fingerprint: fingerprint.toUpperCase() };
}

function keyFileText(file: unknown): string {
  if (typeof file !== 'string') throw new ArgumentError(`key: { file } names a file, got ${JSON.stringify(file)}`);
  try {
    return readFileSync(resolve(file), 'utf8');
  } catch (err) {
    throw new ArgumentError(`key: cannot read ${resolve(file)}: ${(err as Error).message}`);
  }
}

export const PacmanRepository = {
  /**
   * The [NAME] section of /etc/pacman.conf holds exactly these settings (added at the end when new); a
   * diff. With a key, pacman's keyring trusts it first (changed when it was added).
   */
  present: method<[name: string, opts: PacmanRepositoryOptions], RepositoryResult>({
    tool: pacmanTool,
    name: 'PacmanRepository.present',
    content: 'diff',
    remote: 'repository',
    cli: { positional: ['name'], options: { servers: 'strings', include: 'string', sigLevel: 'string', key: 'text', keyFingerprint: 'string' } },
    operations: ([name, o]) => (sectionName(name), sectionBody(o), signingKey(o) ? [...EDIT_CONF, ...KEYRING] : EDIT_CONF),
    args: ([name, o], resolved) => {
      const key = signingKey(o);
      return [name, 'present', sectionBody(o), resolved.paths[PACMAN_CONF], key?.text ?? null, key?.fingerprint ?? null];
    },
  }),
  absent: method<[name: string], RepositoryResult>({
    tool: pacmanTool,
    name: 'PacmanRepository.absent',
    content: 'diff',
    remote: 'repository',
    cli: { positional: ['name'] },
    operations: ([name]) => (sectionName(name), EDIT_CONF),
    args: ([name], resolved) => [name, 'absent', [], resolved.paths[PACMAN_CONF], null, null],
  }),
};
