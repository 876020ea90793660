// What remux knows about the programs it analyses: for each program (looked up by basename), which options
// take a value, what those values and the operands are (read, written, listed paths; refusals), and which
// handler in analysis.ts interprets the rest. Plus the getopt-style option parser those handlers share.

/** Role bits of a path argument. */
export const R = 1; //  read
export const W = 2; //  written, created, modified or deleted
export const L = 4; //  listed or traversed (recursively, for recursive tools)
/** Only when the value looks like a path (values that are "a date or a file", "a hash or a file"…). */
export const IFPATH = 8;

/** What an option's value (or the option itself) means: role bits, or a refusal reason. */
export type Meaning = number | string;

/** 0: flag; 1: takes a value (attached or the next argument); 2: takes an optional value, attached only. */
type Arity = 0 | 1 | 2;

/** The handler in analysis.ts that interprets a tool's parsed arguments. */
export type Kind =
  | 'plain' //       operands have `operands` roles
  | 'none' //        nothing in argv is a path (echo, printf, true…)
  | 'refuse' //      refused outright: `reason`
  | 'interp' //      a language interpreter: runs code (execute_code) unless it only prints its version
  | 'build' //       a build tool or package manager: runs the project's code (execute_code), `reason` says
  //                 how; the working directory is the project unless an option with role L names another
  | 'wrap' //        runs the command after its options (and `skip` operands)
  | 'setarch' //     setarch [ARCH] [options] [command], and its links named after an architecture
  | 'env'
  | 'sudo'
  | 'xargs'
  | 'flock'
  | 'shell' //       POSIX shells: `-c STRING` goes to nested
  | 'eval'
  | 'builtin' //     printf, test: shell builtins too, whose -v NAME can run commands
  | 'busybox'
  | 'find'
  | 'pattern' //     grep family: the first operand is the pattern unless -e/-f
  | 'dest' //        cp, mv, ln, install: sources then a destination
  | 'inout' //       uniq: INPUT read, OUTPUT written
  | 'cmp'
  | 'mode' //        chmod
  | 'owner' //       chown, chgrp
  | 'compress' //    gzip family: replaces its operands unless writing to stdout
  | 'split'
  | 'less'
  | 'dd'
  | 'xxd'
  | 'sed'
  | 'awk'
  | 'tar'
  | 'git'
  | 'curl'
  | 'wget'
  | 'ssh'
  | 'scp'
  | 'rsync'
  | 'ip' //          iproute2's ip: `netns exec`, `vrf exec` and batch files run commands
  | 'tc' //          iproute2's tc: `exec` and batch files run commands
  | 'zip' //         -TT / --unzip-command runs a command
  | 'openssl' //     engines, providers and config files load code
  | 'chattr' //      modes (+i, -a, =e) and options until the first file, which is written
  | 'setcap' //      pairs of capabilities (or -r) and the file they are set on
  | 'sysctl' //      keys are files under /proc/sys: KEY=VALUE writes one
  | 'mount' //       refused, but for listing the mounts
  | 'umount' //      its operands are mount points (written); one that names what is mounted is refused
  | 'wipefs' //      lists signatures (reads) unless told to erase them
  | 'mkfs' //        runs mkfs.TYPE with the arguments after its own options
  | 'losetup' //     attaching a file to a loop device is refused
  | 'keygen' //      ssh-keygen: what -f and the operands are depends on the mode
  | 'apt' //         apt, apt-get: package files and -o options that run commands
  | 'dpkg' //        dpkg: installing a package file runs its maintainer scripts
  | 'ps'; //         procps ps: BSD `e` prints every process's environment

export interface ToolSpec {
  readonly kind: Kind;
  readonly short: ReadonlyMap<string, Arity>;
  readonly long: ReadonlyMap<string, Arity>;
  readonly longNames: readonly string[];
  /** Keyed '-o' / '--output' (long names in full). */
  readonly values: ReadonlyMap<string, Meaning>;
  /** Roles of operands (0: operands are not paths). */
  readonly operands: number;
  /**
   * The second operand is a size, not a path (mke2fs DEVICE [BLOCKS]): only when every option is known,
   * since an unknown option's value would shift the operands.
   */
  readonly sizeOperand: boolean;
  /** Options whose value is comma-separated NAME=VALUE suboptions (mkfs.xfs -d name=FILE): the meanings of the VALUEs, by NAME. */
  readonly subopts: ReadonlyMap<string, ReadonlyMap<string, Meaning>>;
  /** Options the table does not know are refused with this reason (they may take values, which could be paths); null: read like any. */
  readonly unknownOptions: string | null;
  /** Options end at the first operand (wrappers, POSIX-style tools); otherwise GNU permutation. */
  readonly stop: boolean;
  /** No argument of this tool can name a path, so run-time arguments appended by xargs are harmless. */
  readonly pathFree: boolean;
  /** Options after which operands are not paths (`shuf -e`) or not a command to run (`taskset -p`). */
  readonly literal: ReadonlySet<string>;
  /** Options that make the tool recurse into directory operands (adds L to their roles). */
  readonly recurse: ReadonlySet<string>;
  /** Operand analysed when none is given (`ls` → `.`). */
  readonly dflt: string | null;
  /** Operands before the wrapped command (`timeout DURATION cmd`, `taskset MASK cmd`). */
  readonly skip: number;
  /** Wrappers: what the tool does without a command, completing "<tool> …" (refused); null: nothing. */
  readonly alone: string | null;
  /** First operands (verbs) that are refused, with the reason. */
  readonly verbs: ReadonlyMap<string, string>;
  /** First operands (verbs) that make it do what the program of the name given does (ArgvAnalysis.actsAs). */
  readonly actsAs: ReadonlyMap<string, string>;
  /** First operands (verbs) whose further operands are systemd units it starts (SYSTEMD_UNITS_ACTING_AS). */
  readonly startsUnits: ReadonlySet<string>;
  /** For kind 'refuse'. */
  readonly reason: string;
  /**
   * Options that make the tool reach paths that are not on its command line (symlinks followed while
   * recursing, link targets dereferenced), which only the OS sandbox can confine (analysis.ts, sandboxOnly):
   * option → what the tool then does, completing "<tool> <option> …".
   */
  readonly sandboxOnly: ReadonlyMap<string, string>;
  /** The `sandboxOnly` options count only with a `recurse` option: chown -L does nothing without -R. */
  readonly sandboxOnlyIfRecursive: boolean;
  /** What the tool does without any option that reaches such paths, completing "<tool> …"; null: nothing. */
  readonly sandboxOnlyAlways: string | null;
  /** Options that keep the tool to its command line, overriding both (diff --no-dereference). */
  readonly sandboxSafe: ReadonlySet<string>;
  /**
   * Into a directory destination the tool writes DEST/basename(SOURCE) by opening it, so through a symlink
   * of that name (cp; mv, ln and install replace such a link instead): that path is written too.
   */
  readonly writesInto: boolean;
}

interface Def {
  kind?: Kind;
  /** getopt string of the options that take a value: 'n:c:' (required), 'w::' (optional, attached). */
  short?: string;
  /** Space-separated long options: 'name' flag, 'name=' value, 'name?' optional value (`--name=v` only). */
  long?: string;
  /** Keys are space-separated aliases: '-o --output'. Long names in full. */
  values?: Record<string, Meaning>;
  operands?: number;
  sizeOperand?: boolean;
  /** Keys like `values`. */
  subopts?: Record<string, Record<string, Meaning>>;
  unknownOptions?: string;
  stop?: boolean;
  pathFree?: boolean;
  literal?: string;
  recurse?: string;
  dflt?: string;
  skip?: number;
  alone?: string;
  verbs?: Record<string, string>;
  /** Keys are space-separated verbs, values the program name they act as. */
  actsAs?: Record<string, string>;
  startsUnits?: string;
  reason?: string;
  /** Keys like `values`. */
  sandboxOnly?: Record<string, string>;
  sandboxOnlyIfRecursive?: boolean;
  sandboxOnlyAlways?: string;
  sandboxSafe?: string;
  writesInto?: boolean;
}

const words = (s: string | undefined): string[] => (s ? s.split(' ').filter(Boolean) : []);

function spec(d: Def): ToolSpec {
  const short = new Map<string, Arity>();
  const opts = d.short ?? '';
  for (let i = 0; i < opts.length; i++) {
    const c = opts.charAt(i);
    const arity: Arity = opts[i + 1] !== ':' ? 0 : opts[i + 2] === ':' ? 2 : 1;
    short.set(c, arity);
    i += arity === 0 ? 0 : arity;
  }
  const long = new Map<string, Arity>();
  for (const w of words(d.long)) {
    const last = w.charAt(w.length - 1);
    if (last === '=') long.set(w.slice(0, -1), 1);
    else if (last === '?') long.set(w.slice(0, -1), 2);
    else long.set(w, 0);
  }
  const values = new Map<string, Meaning>();
  for (const [keys, meaning] of Object.entries(d.values ?? {})) for (const k of words(keys)) values.set(k, meaning);
  const sandboxOnly = new Map<string, string>();
  for (const [keys, does] of Object.entries(d.sandboxOnly ?? {})) for (const k of words(keys)) sandboxOnly.set(k, does);
  const subopts = new Map<string, ReadonlyMap<string, Meaning>>();
  for (const [keys, names] of Object.entries(d.subopts ?? {})) for (const k of words(keys)) subopts.set(k, new Map(Object.entries(names)));
  return {
    kind: d.kind ?? 'plain',
    short,
    long,
    longNames: [...long.keys()],
    values,
    operands: d.operands ?? 0,
    sizeOperand: d.sizeOperand ?? false,
    subopts,
    unknownOptions: d.unknownOptions ?? null,
    stop: d.stop ?? false,
    pathFree: d.pathFree ?? false,
    literal: new Set(words(d.literal)),
    recurse: new Set(words(d.recurse)),
    dflt: d.dflt ?? null,
    skip: d.skip ?? 0,
    alone: d.alone ?? null,
    verbs: new Map(Object.entries(d.verbs ?? {})),
    actsAs: new Map(Object.entries(d.actsAs ?? {}).flatMap(([verbs, name]) => words(verbs).map((v) => [v, name] as const))),
    startsUnits: new Set(words(d.startsUnits)),
    reason: d.reason ?? '',
    sandboxOnly,
    sandboxOnlyIfRecursive: d.sandboxOnlyIfRecursive ?? false,
    sandboxOnlyAlways: d.sandboxOnlyAlways ?? null,
    sandboxSafe: new Set(words(d.sandboxSafe)),
    writesInto: d.writesInto ?? false,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Option parsing

export interface Opt {
  /** '-o' or '--output' (a long option by its full name, after abbreviation). */
  name: string;
  value: string | undefined;
  /** How many operands came before this option (tar's -C applies to the operands after it). */
  at: number;
  /** The tool's table lists it (for an unknown one, whether it takes a value is a guess). */
  known: boolean;
}

export interface Parsed {
  opts: Opt[];
  operands: string[];
  /** Values of options the table does not know that look like paths (analysed as reads). */
  unknown: string[];
  /** Index in argv where parsing stopped: the first operand for `stop` specs, else argv.length. */
  end: number;
}

/** getopt_long's rule: an exact name, else the only long option the text abbreviates. */
export function resolveLong(s: ToolSpec, name: string): string | undefined {
  if (s.long.has(name)) return name;
  if (name === '') return undefined;
  let found: string | undefined;
  for (const n of s.longNames) {
    if (!n.startsWith(name)) continue;
    if (found !== undefined) return undefined; // ambiguous: the tool refuses it
    found = n;
  }
  return found;
}

/**
 * Parses argv[start…] the way GNU getopt_long does for this spec. Unknown short letters are taken as
 * flags (so a following operand is never swallowed); the rest of a cluster after an unknown letter, and
 * the value of an unknown `--name=value`, are kept in `unknown` when they look like paths.
 */
export function parseOptions(s: ToolSpec, argv: readonly string[], start: number): Parsed {
  const p: Parsed = { opts: [], operands: [], unknown: [], end: argv.length };
  let i = start;
  for (; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a.length < 2 || a.charCodeAt(0) !== 45 /* - */) {
      if (s.stop) break;
      p.operands.push(a);
      continue;
    }
    if (a === '--') {
      i++;
      if (s.stop) break;
      for (; i < argv.length; i++) p.operands.push(argv[i] as string);
      break;
    }
    if (a.charCodeAt(1) === 45) {
      const eq = a.indexOf('=');
      const text = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const name = resolveLong(s, text);
      const arity = name === undefined ? undefined : s.long.get(name);
      if (name === undefined || arity === undefined) {
        if (eq >= 0 && looksLikePath(a.slice(eq + 1))) p.unknown.push(a.slice(eq + 1));
        p.opts.push({ name: `--${text}`, value: undefined, at: p.operands.length, known: false });
        continue;
      }
      let value: string | undefined;
      if (eq >= 0) value = a.slice(eq + 1);
      else if (arity === 1) value = argv[++i];
      p.opts.push({ name: `--${name}`, value, at: p.operands.length, known: true });
      continue;
    }
    // After an unknown letter the rest may be its value: keep it, unless a known option reached through
    // plain letters takes it (`-ro/x`: -r, then -o /x; but in `-q/etc` getopt never gets past the `/`).
    let unknownRest: string | undefined;
    let letters = true;
    for (let j = 1; j < a.length; j++) {
      const c = a.charAt(j);
      const arity = s.short.get(c);
      if (arity === undefined || arity === 0) {
        if (arity === undefined) unknownRest ??= a.slice(j + 1);
        letters &&= isAlnum(c);
        p.opts.push({ name: `-${c}`, value: undefined, at: p.operands.length, known: arity !== undefined });
        continue;
      }
      let value: string | undefined;
      if (j + 1 < a.length) {
        value = a.slice(j + 1);
        if (letters) unknownRest = undefined;
      } else if (arity === 1) value = argv[++i];
      p.opts.push({ name: `-${c}`, value, at: p.operands.length, known: true });
      break;
    }
    if (unknownRest !== undefined && looksLikePath(unknownRest)) p.unknown.push(unknownRest);
  }
  if (s.stop) p.end = i;
  return p;
}

const isAlnum = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

/** `.`, `..`, or any text with a slash. Bare words are not taken for paths (see analysis.ts). */
export function looksLikePath(v: string): boolean {
  return v === '.' || v === '..' || v.includes('/');
}

// ---------------------------------------------------------------------------------------------------------
// The table

const INTERPRETER = 'interpreters run code that remux cannot check';
const RUNS_PROJECT = (what: string): string => `runs ${what}, code that remux cannot check`;
const NAMES_INSIDE = (opt: string): string => `${opt} reads file names from a file, and those cannot be checked`;
const RUNS = (what: string): string => `${what} runs a program that cannot be checked`;
const ARGV0 = (what: string): string => `${what} runs the program under another name, which multi-call programs (busybox, systemctl) act on`;

const COMPRESS_STDOUT = '-c --stdout --to-stdout -l --list -t --test';

const FOLLOWS = 'follows symlinks met while recursing';
const WRITES_OUTPUTS = 'writes its output files through symlinks of the same names';
const CHOWN_FOLLOWS = { '-L': FOLLOWS, '-H': 'changes the targets of symlinks met while recursing' };

const GREP: Def = {
  kind: 'pattern',
  short: 'A:B:C:D:d:e:f:m:X:',
  long: 'after-context= basic-regexp before-context= binary-files= byte-offset binary count color? colour? context= devices= directories= exclude= exclude-from= exclude-dir= extended-regexp file= files-with-matches files-without-match fixed-strings ignore-case no-ignore-case include= initial-tab label= line-buffered line-number line-regexp max-count= no-filename no-group-separator group-separator= no-messages null null-data only-matching perl-regexp quiet recursive dereference-recursive regexp= invert-match silent text with-filename word-regexp',
  values: { '-f --file --exclude-from': R },
  recurse: '-r -R --recursive --dereference-recursive',
  // -r follows only the symlinks on the command line, which the policy resolves.
  sandboxOnly: { '-R --dereference-recursive': FOLLOWS },
  operands: R,
};

/**
 * systemd units whose start does what the program of the name given does (systemctl's startsUnits verbs):
 * `systemctl start poweroff.target` is `poweroff`. runlevel0/6 are poweroff's and reboot's other names;
 * starting shutdown.target stops every service, and so do rescue and emergency mode (runlevel1 is rescue's
 * other name), which take the machine off the network; suspending or hibernating it takes it off-line too:
 * all of these count as `shutdown`.
 */
const SYSTEMD_TARGETS_ACTING_AS: Record<string, string> = {
  poweroff: 'poweroff', runlevel0: 'poweroff', exit: 'poweroff', halt: 'halt', kexec: 'kexec', reboot: 'reboot', runlevel6: 'reboot', 'soft-reboot': 'reboot', 'ctrl-alt-del': 'reboot',
  shutdown: 'shutdown', rescue: 'shutdown', runlevel1: 'shutdown', emergency: 'shutdown', suspend: 'shutdown', hibernate: 'shutdown', 'hybrid-sleep': 'shutdown', 'suspend-then-hibernate': 'shutdown',
};
/** The services those targets start, by the target's name: most are systemd-NAME.service. */
const SYSTEMD_TARGET_SERVICES: Record<string, string> = { rescue: 'rescue.service', emergency: 'emergency.service' };
const NO_SERVICE = new Set(['runlevel0', 'runlevel1', 'runlevel6', 'shutdown', 'ctrl-alt-del']);

export const SYSTEMD_UNITS_ACTING_AS: ReadonlyMap<string, string> = new Map(
  Object.entries(SYSTEMD_TARGETS_ACTING_AS).flatMap(
    ([unit, name]) => [[`${unit}.target`, name], ...(NO_SERVICE.has(unit) ? [] : [[SYSTEMD_TARGET_SERVICES[unit] ?? `systemd-${unit}.service`, name]])] as Array<[string, string]>,
  ),
);

const DEFS: Record<string, Def> = {
  // No argument is a path.
  'echo true false sleep yes seq basename dirname tr expr factor uname id whoami uptime free nproc pwd printenv arch logname tty groups':
    { kind: 'none', pathFree: true },
  // Not path-free: words xargs appends could be `e`.
  ps: { kind: 'ps' },
  // Also shell builtins, which a shell runs instead of the file (SSH hosts run command lists in one):
  // the handler refuses what makes a builtin run a command written in its arguments.
  printf: { kind: 'builtin', pathFree: true },
  'test [': { kind: 'builtin', operands: R | IFPATH },
  date: { short: 'd:f:I::r:s:', long: 'date= debug file= iso-8601? reference= resolution rfc-email rfc-3339= set= universal utc', values: { '-f --file -r --reference': R } },
  hostname: { short: 'F:', long: 'file= fqdn long short domain ip-address all-ip-addresses all-fqdns alias boot nis yp', values: { '-F --file': R } },

  // Readers.
  'cat rev': { long: 'show-all number-nonblank show-ends number squeeze-blank show-tabs show-nonprinting zero', operands: R },
  tac: { short: 's:', long: 'before regex separator=', operands: R },
  head: { short: 'c:n:', long: 'bytes= lines= quiet silent verbose zero-terminated', operands: R },
  tail: { short: 'c:n:s:', long: 'bytes= follow? lines= max-unchanged-stats= pid= quiet retry silent sleep-interval= verbose zero-terminated', operands: R },
  wc: { long: 'bytes chars lines files0-from= max-line-length words total=', values: { '--files0-from': NAMES_INSIDE('--files0-from') }, operands: R },
  nl: { short: 'b:d:f:h:i:l:n:s:v:w:', long: 'body-numbering= section-delimiter= footer-numbering= header-numbering= line-increment= join-blank-lines= number-format= no-renumber number-separator= starting-line-number= number-width=', operands: R },
  od: { short: 'A:j:N:S:t:w::', long: 'address-radix= endian= format= output-duplicates read-bytes= skip-bytes= strings? traditional width?', operands: R },
  'base64 base32 basenc': { short: 'w:', long: 'decode ignore-garbage wrap= base64 base64url base58 base32 base32hex base16 base2msbf base2lsbf z85', operands: R },
  fold: { short: 'w:', long: 'bytes spaces width=', operands: R },
  fmt: { short: 'w:p:g:', long: 'crown-margin prefix= split-only tagged-paragraph uniform-spacing width= goal=', operands: R },
  'expand unexpand': { short: 't:', long: 'initial tabs= all first-only', operands: R },
  cut: { short: 'b:c:d:f:', long: 'bytes= characters= delimiter= fields= complement only-delimited output-delimiter= zero-terminated', operands: R },
  paste: { short: 'd:', long: 'delimiters= serial zero-terminated', operands: R },
  join: { short: 'a:e:1:2:j:o:t:v:', long: 'ignore-case check-order nocheck-order zero-terminated header', operands: R },
  comm: { long: 'check-order nocheck-order output-delimiter= total zero-terminated', operands: R },
  'md5sum sha1sum sha224sum sha256sum sha384sum sha512sum b2sum cksum sum': {
    short: 'a:l:',
    long: 'algorithm= base64 binary check debug ignore-missing length= quiet raw status strict tag text untagged warn zero',
    values: { '-c --check': NAMES_INSIDE('--check') },
    operands: R,
  },
  stat: { short: 'c:', long: 'cached= dereference file-system format= printf= terse', operands: R },
  // df reports usage of the filesystem holding each operand and reads nothing from it: operands aren't checked.
  df: { short: 'B:t:x:', long: 'all block-size= human-readable inodes local no-sync output? portability print-type si sync total type= exclude-type=', operands: 0 },
  'readlink realpath': { long: 'canonicalize canonicalize-existing canonicalize-missing logical no-newline no-symlinks physical quiet relative-base= relative-to= silent strip verbose zero', values: { '--relative-base --relative-to': R }, operands: R },
  file: {
    short: 'e:f:F:m:P:',
    long: 'apple brief checking-printout compile debug dereference exclude= exclude-quiet= extension files-from= keep-going list magic-file= mime mime-type mime-encoding no-buffer no-dereference no-pad no-sandbox parameter= preserve-date print0 raw separator= special-files uncompress uncompress-noreport',
    values: { '-f --files-from': NAMES_INSIDE('--files-from'), '-m --magic-file': R },
    // -C writes NAME.mgc (NAME: each magic file's own name) into the working directory.
    sandboxOnly: { '-C --compile': 'writes a compiled magic file into the working directory, a path not on its command line' },
    operands: R,
  },
  strings: { short: 'n:t:e:T:s:U:', long: 'all data print-file-name bytes= radix= target= encoding= output-separator= include-all-whitespace unicode=', operands: R },
  hexdump: { short: 'e:f:L::n:s:', long: 'one-byte-octal one-byte-char canonical two-bytes-decimal format= format-file= color? length= skip= no-squeezing two-bytes-octal two-bytes-hex', values: { '-f --format-file': R }, operands: R },
  column: { short: 'c:E:H:i:l:N:n:O:o:p:r:R:s:T:W:', long: 'columns= table table-columns= table-columns-limit= table-order= table-name= table-right= table-truncate= table-wrap= table-hide= table-noextreme= table-noheadings table-header-repeat table-maxout table-empty-lines json keep-empty-lines output-separator= separator= fillrows tree= tree-id= tree-parent= use-spaces? output-width=', operands: R },
  'zcat gzcat': { short: 'S:', long: 'force quiet verbose suffix=', operands: R },
  bzcat: { long: 'small quiet verbose', operands: R },
  'xzcat lzcat': { short: 'F:M:S:T:', long: 'format= memlimit= suffix= threads= quiet verbose', operands: R },
  zstdcat: { short: 'D:', long: 'memory= quiet verbose', values: { '-D': R }, operands: R },
  more: { kind: 'less', short: 'n:', long: 'silent logical no-pause print-over clean-print squeeze plain lines=', operands: R },
  'less pager sensible-pager': {
    kind: 'less',
    short: 'b:D::h:j:k:o:O:p:P:t:T:x:y:z:#:',
    long: 'log-file= LOG-FILE= lesskey-file= lesskey-src= tag= tag-file= pattern= prompt= shift= tabs= window= max-back-scroll= max-forw-scroll= buffers=',
    values: { '-o -O --log-file --LOG-FILE': W, '-k --lesskey-file --lesskey-src -T --tag-file': R },
    sandboxOnly: { '-t --tag': 'opens the file that a tags file names' },
    operands: R,
  },
  sort: {
    short: 'k:o:S:t:T:y:',
    long: 'ignore-leading-blanks check? compress-program= debug dictionary-order field-separator= files0-from= general-numeric-sort ignore-nonprinting ignore-case key= merge month-sort human-numeric-sort numeric-sort output= parallel= random-sort random-source= reverse sort= stable temporary-directory= unique version-sort batch-size= buffer-size= zero-terminated',
    values: {
      '-o --output -T --temporary-directory': W,
      '--random-source': R,
      '--files0-from': NAMES_INSIDE('--files0-from'),
      '--compress-program': RUNS('sort --compress-program'),
    },
    operands: R,
  },
  uniq: { kind: 'inout', short: 'f:s:w:', long: 'all-repeated? check-chars= count group? ignore-case repeated skip-chars= skip-fields= unique zero-terminated' },
  shuf: { short: 'i:n:o:', long: 'echo input-range= head-count= output= random-source= repeat zero-terminated', values: { '-o --output': W, '--random-source': R }, literal: '-e --echo -i --input-range', operands: R },
  cmp: { kind: 'cmp', short: 'i:n:', long: 'print-bytes ignore-initial= verbose bytes= quiet silent' },
  diff: {
    short: 'C:D:F:I:L:S:U:W:x:X:',
    long: 'brief color? context? ed exclude-from= exclude= expand-tabs from-file= horizon-lines= ifdef= ignore-all-space ignore-blank-lines ignore-case ignore-file-name-case ignore-matching-lines= ignore-space-change ignore-tab-expansion ignore-trailing-space initial-tab label= left-column line-format= minimal new-file new-group-format= new-line-format= no-dereference no-ignore-file-name-case normal old-group-format= old-line-format= paginate palette= rcs recursive report-identical-files show-c-function show-function-line= side-by-side speed-large-files starting-file= strip-trailing-cr suppress-blank-empty suppress-common-lines tabsize= text to-file= unchanged-group-format= unchanged-line-format= changed-group-format= unidirectional-new-file unified? width=',
    values: { '-X --exclude-from --from-file --to-file': R },
    recurse: '-r --recursive',
    // Given directories, even without -r, diff compares the files in them, following symlinks.
    sandboxOnlyAlways: 'follows symlinks inside directory operands (unless --no-dereference)',
    sandboxSafe: '--no-dereference',
    operands: R,
  },
  journalctl: {
    short: 'b::c:D:F:g:i:M:n::o:p:S:t:T:u:U:',
    long: 'boot? cursor= after-cursor= cursor-file= directory= file= root= image= image-policy= namespace= since= until= unit= user-unit= identifier= exclude-identifier= priority= facility= grep= case-sensitive? output= output-fields= lines? machine= field= fields list-boots list-namespaces disk-usage vacuum-size= vacuum-time= vacuum-files= rotate flush sync relinquish-var smart-relinquish-var setup-keys verify verify-key= update-catalog list-catalog dump-catalog interval= follow reverse merge no-pager pager-end no-hostname no-full full all quiet utc catalog header new-id128 system user dmesg show-cursor',
    values: {
      '-D --directory': R | L,
      '--root': R | L,
      '-i --file --image': R,
      '--cursor-file': R | W,
      '--vacuum-size --vacuum-time --vacuum-files --rotate --flush --sync --relinquish-var --smart-relinquish-var --setup-keys --update-catalog':
        'journalctl maintenance operations modify the journal',
    },
    // It opens the *.journal entries and machine-id subdirectories it finds even when they are symlinks.
    sandboxOnly: {
      '-D --directory --root': 'reads the journal files it finds there through symlinks',
      '-i --file': 'takes a glob, whose matches cannot be checked',
    },
    operands: R | IFPATH,
  },
  systemctl: {
    short: 'H:M:n:o:p:P:s:t:',
    long: 'host= machine= lines= output= property= signal= type= state= job-mode= kill-whom= kill-value= what= root= image= image-policy= boot-loader-menu= boot-loader-entry= reboot-argument= timestamp= message= preset-mode= drop-in= when= value user system all recursive reverse after before with-dependencies show-types failed no-pager no-legend no-block no-wall no-reload no-ask-password global runtime force now quiet dry-run firmware-setup plain full',
    values: { '--root --image': R },
    verbs: { edit: 'systemctl edit runs an editor' },
    // What its links of these names run: a policy asking before `reboot` asks before `systemctl reboot`,
    // and before `systemctl start reboot.target` (`exit` is poweroff for the system manager).
    // rescue, emergency and the sleep verbs take the machine off the network or off-line: `shutdown`.
    actsAs: { halt: 'halt', poweroff: 'poweroff', 'reboot soft-reboot': 'reboot', kexec: 'kexec', exit: 'poweroff', 'rescue emergency suspend hibernate hybrid-sleep suspend-then-hibernate sleep': 'shutdown' },
    // --now makes enable start what it enables; set-default has the next boot start it.
    startsUnits: 'start restart try-restart condrestart reload-or-restart try-reload-or-restart reload-or-try-restart force-reload isolate enable reenable set-default',
    operands: R | IFPATH,
  },

  // Searchers.
  // zgrep itself rejects -r and -R, but passes --dereference-recursive on to grep (see the pattern handler).
  'grep egrep fgrep zgrep zegrep zfgrep': GREP,
  rgrep: { ...GREP, dflt: '.' }, // grep -r
  rg: {
    kind: 'pattern',
    short: 'A:B:C:E:M:T:d:e:f:g:j:m:r:t:',
    long: 'after-context= before-context= context= color= colors= context-separator= dfa-size-limit= encoding= engine= field-context-separator= field-match-separator= file= files follow glob= iglob= hostname-bin= hyperlink-format= ignore-file= max-columns= max-count= max-depth= max-filesize= path-separator= pre= pre-glob= regex-size-limit= regexp= replace= sort= sortr= threads= type= type-add= type-clear= type-not= generate= type-list',
    values: { '-f --file --ignore-file': R, '--pre': RUNS('rg --pre'), '--hostname-bin': RUNS('rg --hostname-bin') },
    sandboxOnly: { '-L --follow': FOLLOWS },
    operands: R | L,
    dflt: '.',
  },

  // Writers.
  tee: { long: 'append ignore-interrupts output-error?', operands: W },
  'rm unlink': { long: 'force interactive? one-file-system no-preserve-root preserve-root? recursive dir verbose', recurse: '-r -R --recursive', operands: W },
  rmdir: { long: 'ignore-fail-on-non-empty parents verbose', operands: W },
  'mkdir mkfifo': { short: 'm:', long: 'mode= parents verbose context?', operands: W },
  touch: { short: 'd:r:t:', long: 'time= no-create date= reference= no-dereference', values: { '-r --reference': R }, operands: W },
  // Without ORIGINALFILE it writes the files the patch itself names; with one, they are still written in
  // place (and .orig/.rej beside them): only the sandbox sees all it writes.
  patch: {
    short: 'B:d:D:F:g:i:o:p:r:V:x:Y:z:',
    long: 'backup backup-if-mismatch no-backup-if-mismatch prefix= context directory= ifdef= ed remove-empty-files force fuzz= get= input= ignore-whitespace merge? normal forward output= strip= reject-file= reverse silent quiet batch set-time set-utc unified version-control= debug= basename-prefix= suffix= dry-run verbose posix binary read-only= reject-format= follow-symlinks quoting-style=',
    values: { '-i --input': R, '-o --output -r --reject-file': W, '-d --directory': 'patch -d changes directory before it reads its operands; use cd DIR && patch … instead' },
    operands: R | W,
    sandboxOnlyAlways: 'writes the files its patch names, and backups and rejects beside them',
  },
  // Page names are words; a page given as a file (`man -l ./x.1`, `man /path/x.1`) is read.
  man: {
    short: 'C:e:E:L:m:M:p:P:r:R:s:S:H::T::X::',
    long: 'config-file= debug default warnings? whatis apropos regex wildcard names-only all update no-subpages pager= prompt= ascii encoding= no-hyphenation no-justification preprocessor= troff-device? html? gxditview? ditroff local-file catman location location-cat manpath= locale= systems= sections= extension= ignore-case match-case recode=',
    values: {
      '-P --pager': 'man -P runs the pager command it is given, which cannot be checked',
      '-H --html': 'man -H runs a browser, the one given or the one $BROWSER names',
      '-X --gxditview': 'man -X runs gxditview, an X display program',
      '-p --preprocessor': 'man -p chooses which programs process the page before groff',
      '-C --config-file': R,
      '-M --manpath': R | L,
    },
    operands: R | IFPATH,
  },
  // What -f and the operands are depends on the mode (the 'keygen' handler); -D and -w load a library.
  'ssh-keygen': {
    kind: 'keygen',
    short: 'C:D:E:F:I:M:N:O:P:R:V:Y:Z:a:b:f:g:m:n:r:s:t:w:z:',
    values: {
      '-D': 'ssh-keygen -D loads a PKCS#11 library, code that cannot be checked',
      '-w': 'ssh-keygen -w loads a security key provider library, code that cannot be checked',
      '-s': R,
    },
  },
  fallocate: { short: 'l:o:', long: 'collapse-range dig-holes insert-range length= keep-size offset= punch-hole zero-range posix verbose help version', operands: W },
  // Attributes (+i, -a, =e) come before the files: the chattr handler.
  chattr: { kind: 'chattr' },
  // Giving a program capabilities changes what it may do whoever runs it: its file is written.
  setcap: { kind: 'setcap' },
  // They overwrite the device or image they are given, their first operand (a second is its size in
  // blocks); mke2fs -d copies a directory into the filesystem and -J device= writes an external journal's.
  // mkfs runs mkfs.TYPE (the mkfs handler); a mkfs.TYPE without an entry here is MKFS_SPEC (lookupTool).
  mkfs: { kind: 'mkfs', short: 'Vt:h', long: 'type= verbose help version' },
  'mke2fs mkfs.ext2 mkfs.ext3 mkfs.ext4': {
    short: 'b:cd:e:g:i:jl:m:no:qr:s:t:vC:DE:FG:I:J:KL:M:N:O:R:ST:U:Vz:',
    values: { '-d': R | L, '-l': R, '-z': W },
    subopts: { '-J': { device: W } },
    operands: W,
    sizeOperand: true,
  },
  'mkfs.fat mkfs.vfat mkfs.msdos mkdosfs': {
    short: 'aAb:cCf:D:F:g:Ii:l:m:M:n:r:R:s:S:h:v',
    long: 'codepage= invariant mbr? variant= offset= help',
    values: { '-l -m': R },
    operands: W,
    sizeOperand: true,
  },
  mkswap: { short: 'cfp:qL:v:U:e:o:s:FVh', long: 'check force quiet pagesize= label= swapversion= uuid= verbose lock? offset= size= file endianness= help version', operands: W, sizeOperand: true },
  // -d name=, -l logdev= or name= and -r rtdev= or name= are more devices or image files it writes; a
  // config file (-c) can name those too, and a prototype file (-p) the files it copies in.
  'mkfs.xfs': {
    short: 'b:c:d:i:l:L:m:n:p:r:s:CfKNqV',
    long: 'unsupported',
    values: {
      '-c': 'mkfs.xfs -c reads options from a file, which can name more devices and files to write; give them on the command line instead',
      '-p': 'mkfs.xfs -p copies in the files that a prototype file names, and those cannot be checked',
    },
    subopts: { '-d': { name: W }, '-l': { logdev: W, name: W }, '-r': { rtdev: W, name: W } },
    operands: W,
  },
  // Every operand is a device it writes; --rootdir copies a directory into the filesystem.
  'mkfs.btrfs': {
    short: 'A:b:fn:s:m:d:L:R:O:r:U:VvMKqu:',
    long: 'byte-count= csum= checksum= force label= metadata= mixed nodesize= sectorsize= data= version rootdir= subvol= inode-flags= nodiscard features= runtime-features= uuid= device-uuid= quiet verbose shrink compress= reflink param= num-global-roots= help',
    values: { '-r --rootdir': R | L },
    operands: W,
  },
  // Without -a or -o it only lists the signatures it finds (the wipefs handler).
  wipefs: {
    kind: 'wipefs',
    short: 'ab::fhiJnO:o:pqt:V',
    long: 'all backup? force noheadings json no-act offset= output= parsable quiet types= lock? help version',
    values: {
      '-b --backup':
        'wipefs -b writes a backup of each signature it erases into $HOME (or the directory given), under a name made from where the device holds it, which cannot be checked; run it without -b (save the start of the device with dd first if you need a backup)',
    },
  },
  blkdiscard: { short: 'l:o:p:', long: 'force length= offset= step= secure zeroout verbose lock? help version', operands: W },
  // The mount point is written: what was there is replaced, or uncovered (the umount handler).
  umount: {
    kind: 'umount',
    short: 'N:O:t:',
    long: 'all all-targets no-canonicalize detach-loop fake force graceful internal-only no-mtab lazy test-opts= recursive read-only types= verbose quiet namespace= help version',
    values: {
      '-a --all': 'umount -a unmounts every filesystem, at paths not on its command line',
      '-A --all-targets': 'umount -A unmounts the filesystem at each of its mount points, paths not on its command line',
      '-N --namespace': 'umount -N works in another mount namespace, so paths cannot be checked',
    },
    recurse: '-R --recursive',
    operands: W,
  },
  truncate: { short: 'r:s:', long: 'no-create io-blocks reference= size=', values: { '-r --reference': R }, operands: W },
  shred: { short: 'n:s:', long: 'exact force iterations= size= random-source= remove? verbose zero', values: { '--random-source': R }, operands: W },
  // With -R: -L descends into linked directories; -H also changes the target of each symlink met (chown
  // does that, checked on coreutils 9.1; its chmod has neither option, newer ones have both).
  chmod: { kind: 'mode', long: 'changes recursive no-preserve-root preserve-root quiet reference= silent verbose dereference no-dereference', values: { '--reference': R }, recurse: '-R --recursive', sandboxOnly: CHOWN_FOLLOWS, sandboxOnlyIfRecursive: true },
  'chown chgrp': { kind: 'owner', long: 'changes dereference no-dereference from= no-preserve-root preserve-root quiet silent recursive reference= verbose', values: { '--reference': R }, recurse: '-R --recursive', sandboxOnly: CHOWN_FOLLOWS, sandboxOnlyIfRecursive: true },
  cp: {
    kind: 'dest',
    short: 'S:t:',
    long: 'archive attributes-only backup? copy-contents debug dereference force interactive keep-directory-symlink link no-clobber no-dereference no-preserve= no-target-directory one-file-system parents preserve? recursive reflink? remove-destination sparse= strip-trailing-slashes suffix= symbolic-link target-directory= update? verbose context?',
    recurse: '-r -R -a --recursive --archive',
    // Into an existing tree cp opens the files already there, so writes through symlinks among them; this
    // also covers -L, which only follows symlinks in the source tree beyond the command line with -r.
    sandboxOnly: { '-r -R -a --recursive --archive': 'writes through symlinks it meets in an existing destination tree' },
    writesInto: true,
    operands: R,
  },
  // A moved file's content becomes readable at the destination: sources are read and removed.
  mv: { kind: 'dest', short: 'S:t:', long: 'backup? context debug exchange force interactive no-clobber no-copy no-target-directory strip-trailing-slashes suffix= target-directory= update? verbose', operands: R | W },
  // A hard link makes the source's content reachable under the new name: sources are read.
  ln: { kind: 'dest', short: 'S:t:', long: 'backup? directory force interactive logical no-dereference no-target-directory physical relative suffix= symbolic target-directory= verbose', operands: R },
  install: {
    kind: 'dest',
    short: 'g:m:o:S:t:',
    long: 'backup? compare debug directory group= mode= owner= preserve-timestamps strip strip-program= suffix= target-directory= no-target-directory verbose preserve-context context?',
    values: { '--strip-program': RUNS('install --strip-program') },
    literal: '-d --directory',
    operands: R,
  },
  // Their output files (xaa, xab…) are opened without O_EXCL: a symlink of that name, even a dangling one, is written through.
  split: { kind: 'split', short: 'a:b:C:l:n:t:', long: 'suffix-length= additional-suffix= bytes= line-bytes= lines= number= separator= unbuffered elide-empty-files verbose filter= numeric-suffixes? hex-suffixes?', values: { '--filter': 'split --filter runs a shell command' }, sandboxOnlyAlways: WRITES_OUTPUTS },
  csplit: { kind: 'split', short: 'b:f:n:', long: 'prefix= suffix-format= digits= keep-files quiet silent elide-empty-files suppress-matched', values: { '-f --prefix': W }, sandboxOnlyAlways: WRITES_OUTPUTS },
  dd: { kind: 'dd' },
  xxd: { kind: 'xxd' },

  // Listers.
  ls: {
    short: 'I:T:w:',
    long: 'all almost-all author block-size= classify? color? context dereference dereference-command-line dereference-command-line-symlink-to-dir directory dired escape file-type format= full-time group-directories-first hide-control-chars hide= human-readable hyperlink? ignore-backups ignore= indicator-style= inode kibibytes literal no-group numeric-uid-gid quote-name quoting-style= recursive reverse show-control-chars si size sort= tabsize= time= time-style= width= zero',
    // -L stats the target of every symlink listed: without -R that shows their metadata (size, owner, times,
    // which remux counts as reading, like stat), with -R it lists the directories they point to. -H and
    // --dereference-command-line* follow only command-line symlinks, which the policy resolves. --color and
    // -F show only whether a target exists and its type.
    sandboxOnly: { '-L --dereference': 'follows symlinks to their targets' },
    operands: L,
    dflt: '.',
  },
  du: {
    short: 'B:d:t:X:',
    long: 'all apparent-size block-size= bytes count-links dereference dereference-args exclude= exclude-from= files0-from= human-readable inodes max-depth= no-dereference null one-file-system separate-dirs si summarize threshold= time? time-style= total',
    values: { '-X --exclude-from': R, '--files0-from': NAMES_INSIDE('--files0-from') },
    // -H, -D and --dereference-args follow only command-line symlinks, which the policy resolves.
    sandboxOnly: { '-L --dereference': FOLLOWS },
    operands: L,
    dflt: '.',
  },

  // Compressors: they replace (or add to) their operands unless writing to stdout, listing or testing.
  // With -r, -f makes gzip and zstd follow symlinks to files and directories (without it they skip them).
  'gzip gunzip uncompress': {
    kind: 'compress',
    short: 'S:',
    long: 'ascii best fast force keep list license name no-name quiet recursive rsyncable suffix= synchronous test verbose decompress uncompress stdout to-stdout',
    literal: COMPRESS_STDOUT,
    recurse: '-r --recursive',
    sandboxOnly: { '-f --force': FOLLOWS },
    sandboxOnlyIfRecursive: true,
  },
  'xz unxz lzma unlzma': {
    kind: 'compress',
    short: 'C:F:M:S:T:',
    long: 'compress decompress uncompress test list keep force stdout to-stdout suffix= files? files0? format= check= threads= memlimit= memlimit-compress= memlimit-decompress= memory= block-size= block-list= flush-timeout= extreme quiet verbose robot no-adjust no-sparse single-stream ignore-check',
    values: { '--files --files0': NAMES_INSIDE('--files') },
    literal: COMPRESS_STDOUT,
  },
  'bzip2 bunzip2': { kind: 'compress', long: 'compress decompress test keep force stdout small quiet verbose fast best', literal: COMPRESS_STDOUT },
  'zstd unzstd': {
    kind: 'compress',
    short: 'o:D:',
    long: 'rm keep force stdout to-stdout decompress uncompress test list format= output-dir-flat= output-dir-mirror= filelist= patch-from= memory= threads= ultra long? fast? adapt? quiet verbose trace=',
    values: { '-o --output-dir-flat --output-dir-mirror --trace': W, '-D --patch-from': R, '--filelist': NAMES_INSIDE('--filelist') },
    literal: COMPRESS_STDOUT,
    recurse: '-r',
    sandboxOnly: { '-f --force': FOLLOWS },
    sandboxOnlyIfRecursive: true,
  },

  // Script languages remux can read.
  sed: {
    kind: 'sed',
    short: 'e:f:l:i::',
    long: 'binary debug expression= file= follow-symlinks in-place? line-length= null-data zero-terminated posix quiet regexp-extended sandbox separate silent unbuffered',
    values: { '-f --file': 'sed -f runs a script file whose contents cannot be checked' },
  },
  'awk gawk mawk nawk': {
    kind: 'awk',
    short: 'F:f:v:W:d::D::e:E:i:l:L::o::p::',
    long: 'field-separator= file= assign= characters-as-bytes traditional copyright dump-variables? debug? source= exec= gen-pot include= load= lint? bignum non-decimal-data no-optimize optimize pretty-print? profile? posix re-interval sandbox lint-old use-lc-numeric version help',
    values: {
      '-f --file -E --exec': 'awk -f runs a program file whose contents cannot be checked',
      '-i --include -l --load': 'awk --include/--load loads code that cannot be checked',
      '-D --debug': 'the awk debugger runs commands that cannot be checked',
      '-d --dump-variables -o --pretty-print -p --profile': W,
    },
    stop: true,
  },
  tar: {
    kind: 'tar',
    short: 'b:C:f:F:g:H:I:K:L:N:T:V:X:',
    long: 'absolute-names acls add-file= after-date= anchored append atime-preserve? auto-compress backup? block-number blocking-factor= bzip2 catenate check-device check-links checkpoint? checkpoint-action= clamp-mtime compare compress concatenate confirmation create delay-directory-restore delete dereference diff directory= exclude-backups exclude-caches exclude-caches-all exclude-caches-under exclude-from= exclude-ignore-recursive= exclude-ignore= exclude-tag-all= exclude-tag-under= exclude-tag= exclude-vcs exclude-vcs-ignores exclude= extract file= files-from= force-local format= full-time get group-map= group= gunzip gzip hard-dereference hole-detection= ignore-case ignore-command-error ignore-failed-read ignore-zeros incremental index-file= info-script= interactive keep-directory-symlink keep-newer-files keep-old-files label= level= list listed-incremental= lzip lzma lzop mode= mtime= multi-volume new-volume-script= newer-mtime= newer= no-acls no-anchored no-auto-compress no-check-device no-delay-directory-restore no-ignore-case no-ignore-command-error no-null no-overwrite-dir no-quote-chars= no-recursion no-same-owner no-same-permissions no-seek no-selinux no-unquote no-verbatim-files-from no-wildcards no-wildcards-match-slash no-xattrs null numeric-owner occurrence? old-archive one-file-system one-top-level? overwrite overwrite-dir owner-map= owner= pax-option= portability posix preserve-order preserve-permissions quote-chars= quoting-style= read-full-records record-size= recursion recursive-unlink remove-files restrict rmt-command= rsh-command= same-order same-owner same-permissions seek selinux set-mtime-format= show-defaults show-omitted-dirs show-snapshot-field-ranges show-stored-names show-transformed-names skip-old-files sort= sparse sparse-version= starting-file= strip-components= suffix= tape-length= test-label to-command= to-stdout totals? touch transform= uncompress ungzip unlink-first unquote update use-compress-program= utc verbatim-files-from verbose verify volno-file= warning= wildcards wildcards-match-slash xattrs xattrs-exclude= xattrs-include= xform= xz zstd',
    values: {
      '-g --listed-incremental': R | W,
      '--index-file --volno-file': W,
      '-X --exclude-from --group-map --owner-map --add-file': R,
      '-N --newer --after-date --newer-mtime --mtime': R | IFPATH,
      '-T --files-from': NAMES_INSIDE('tar --files-from'),
      '-I --use-compress-program': RUNS('tar --use-compress-program'),
      '-F --info-script --new-volume-script': RUNS('tar --info-script'),
      '--to-command': RUNS('tar --to-command'),
      '--checkpoint-action': 'tar --checkpoint-action can run a program that cannot be checked',
      '--rsh-command --rmt-command': RUNS('tar --rsh-command'),
    },
    // Extracting and comparing reach through symlinks too (the tar handler).
    sandboxOnly: { '-h --dereference': 'archives the targets of symlinks' },
  },

  // Network clients: the binary is checked by the policy; their file options are paths.
  curl: {
    kind: 'curl',
    short: 'A:b:c:C:d:D:e:E:F:h:H:K:m:o:P:Q:r:t:T:u:U:w:x:X:y:Y:z:',
    long: 'abstract-unix-socket= alt-svc= anyauth append aws-sigv4= basic cacert= capath= cert= cert-status cert-type= ciphers= compressed compressed-ssh config= connect-timeout= connect-to= continue-at= cookie= cookie-jar= create-dirs create-file-mode= crlf crlfile= curves= data= data-ascii= data-binary= data-raw= data-urlencode= delegation= digest disable disable-eprt disable-epsv disallow-username-in-url dns-interface= dns-ipv4-addr= dns-ipv6-addr= dns-servers= doh-cert-status doh-insecure doh-url= dump-header= ech= egd-file= engine= etag-compare= etag-save= expand-data= expand-url= expand-output= expect100-timeout= fail fail-early fail-with-body false-start form= form-escape form-string= ftp-account= ftp-alternative-to-user= ftp-create-dirs ftp-method= ftp-pasv ftp-port= ftp-pret ftp-skip-pasv-ip ftp-ssl-ccc ftp-ssl-ccc-mode= ftp-ssl-control get globoff happy-eyeballs-timeout-ms= haproxy-clientip= haproxy-protocol head header= help= hostpubmd5= hostpubsha256= hsts= http0.9 http1.0 http1.1 http2 http2-prior-knowledge http3 http3-only ignore-content-length include insecure interface= ip-tos= ipfs-gateway= ipv4 ipv6 json= junk-session-cookies keepalive-cnt= keepalive-time= key= key-type= krb= libcurl= limit-rate= list-only local-port= location location-trusted login-options= mail-auth= mail-from= mail-rcpt= mail-rcpt-allowfails manual max-filesize= max-redirs= max-time= metalink mptcp negotiate netrc netrc-file= netrc-optional next no-alpn no-buffer no-clobber no-keepalive no-npn no-progress-meter no-sessionid noproxy= ntlm ntlm-wb oauth2-bearer= output= output-dir= parallel parallel-immediate parallel-max= pass= path-as-is pinnedpubkey= post301 post302 post303 preproxy= progress-bar proto= proto-default= proto-redir= proxy= proxy-anyauth proxy-basic proxy-cacert= proxy-capath= proxy-cert= proxy-cert-type= proxy-ciphers= proxy-crlfile= proxy-digest proxy-header= proxy-insecure proxy-key= proxy-key-type= proxy-negotiate proxy-ntlm proxy-pass= proxy-pinnedpubkey= proxy-service-name= proxy-ssl-allow-beast proxy-ssl-auto-client-cert proxy-tls13-ciphers= proxy-tlsauthtype= proxy-tlspassword= proxy-tlsuser= proxy-tlsv1 proxy-user= proxy1.0= proxytunnel pubkey= quote= random-file= range= rate= raw referer= remote-header-name remote-name remote-name-all remote-time remove-on-error request= request-target= resolve= retry= retry-all-errors retry-connrefused retry-delay= retry-max-time= sasl-authzid= sasl-ir service-name= show-error show-headers silent skip-existing socks4= socks4a= socks5= socks5-basic socks5-gssapi socks5-gssapi-nec socks5-gssapi-service= socks5-hostname= speed-limit= speed-time= ssl ssl-allow-beast ssl-auto-client-cert ssl-no-revoke ssl-reqd ssl-revoke-best-effort ssl-sessions= sslv2 sslv3 stderr= styled-output suppress-connect-headers tcp-fastopen tcp-nodelay telnet-option= tftp-blksize= tftp-no-options time-cond= tls-earlydata tls-max= tls13-ciphers= tlsauthtype= tlspassword= tlsuser= tlsv1 tlsv1.0 tlsv1.1 tlsv1.2 tlsv1.3 tr-encoding trace= trace-ascii= trace-config= trace-ids trace-time unix-socket= upload-file= url= url-query= use-ascii user= user-agent= variable= verbose version vlan-priority= write-out= xattr',
    values: {
      '-o --output -c --cookie-jar -D --dump-header --trace --trace-ascii --stderr --libcurl --etag-save --output-dir': W,
      '--hsts --alt-svc --ssl-sessions': R | W,
      '-T --upload-file --cacert --capath -E --cert --key --crlfile --proxy-cacert --proxy-capath --proxy-cert --proxy-key --proxy-crlfile --netrc-file --etag-compare --egd-file --random-file': R,
      '--pinnedpubkey --proxy-pinnedpubkey -z --time-cond': R | IFPATH,
      // Connecting to a Unix socket needs write permission on it (think /var/run/docker.sock).
      '--unix-socket': W,
      '-K --config': 'curl --config reads options from a file, and those cannot be checked',
      '--engine': 'curl --engine loads crypto engine code',
    },
  },
  wget: {
    kind: 'wget',
    short: 'a:A:B:D:e:i:I:l:n:o:O:P:Q:R:t:T:U:w:X:',
    long: 'version help background execute= output-file= append-output= debug quiet verbose no-verbose report-speed= input-file= force-html base= config= no-config rejected-log= tries= retry-connrefused retry-on-http-error= output-document= no-clobber no-netrc continue start-pos= progress= show-progress timestamping no-if-modified-since no-use-server-timestamps server-response spider timeout= dns-timeout= connect-timeout= read-timeout= wait= waitretry= random-wait no-proxy quota= bind-address= limit-rate= no-dns-cache restrict-file-names= ignore-case inet4-only inet6-only prefer-family= user= password= ask-password use-askpass= no-iri local-encoding= remote-encoding= unlink xattr no-directories force-directories no-host-directories protocol-directories directory-prefix= cut-dirs= http-user= http-password= no-cache default-page= adjust-extension ignore-length header= compression= max-redirect= proxy-user= proxy-password= referer= save-headers user-agent= no-http-keep-alive no-cookies load-cookies= save-cookies= keep-session-cookies post-data= post-file= method= body-data= body-file= content-disposition content-on-error auth-no-challenge secure-protocol= https-only no-check-certificate certificate= certificate-type= private-key= private-key-type= ca-certificate= ca-directory= crl-file= pinnedpubkey= random-file= egd-file= ciphers= no-hsts hsts-file= ftp-user= ftp-password= no-remove-listing no-glob no-passive-ftp preserve-permissions retr-symlinks ftps-implicit ftps-resume-ssl ftps-clear-data-connection ftps-fallback-to-ftp warc-file= warc-header= warc-max-size= warc-cdx warc-dedup= no-warc-compression no-warc-digests no-warc-keep-log warc-tempdir= recursive level= delete-after convert-links convert-file-only backups= backup-converted mirror page-requisites strict-comments accept= reject= accept-regex= reject-regex= regex-type= domains= exclude-domains= follow-ftp follow-tags= ignore-tags= span-hosts relative include-directories= trust-server-names exclude-directories= no-parent',
    values: {
      '-O --output-document -o --output-file -a --append-output -P --directory-prefix --save-cookies --warc-file --warc-tempdir --rejected-log': W,
      '--hsts-file': R | W,
      '-i --input-file --load-cookies --post-file --body-file --certificate --private-key --ca-certificate --ca-directory --crl-file --random-file --egd-file --warc-dedup': R,
      '--pinnedpubkey': R | IFPATH,
      '-e --execute': 'wget --execute runs .wgetrc commands that cannot be checked',
      '--config': 'wget --config reads settings from a file, and those cannot be checked',
      '--use-askpass': RUNS('wget --use-askpass'),
    },
  },
  ssh: {
    kind: 'ssh',
    short: 'b:B:c:D:e:E:F:i:I:J:l:L:m:o:O:p:P:Q:R:S:w:W:',
    values: {
      '-E': W,
      '-S': W,
      '-i': R,
      '-F': 'ssh -F reads a config file that can run programs (ProxyCommand, LocalCommand)',
      '-I': 'ssh -I loads a PKCS#11 library',
    },
    stop: true,
  },
  scp: {
    kind: 'scp',
    short: 'c:D:F:i:J:l:o:P:S:X:',
    values: {
      '-i': R,
      '-F': 'scp -F reads a config file that can run programs (ProxyCommand)',
      '-S -D': RUNS('scp -S/-D'),
    },
    recurse: '-r',
    sandboxOnly: { '-r': FOLLOWS }, // its manual says so; downloads also write through symlinks in the local tree
    writesInto: true,
  },
  rsync: {
    kind: 'rsync',
    short: 'B:e:f:M:T:@:',
    long: 'verbose info= debug= stderr= quiet no-motd checksum archive recursive relative no-implied-dirs backup backup-dir= suffix= update inplace append append-verify dirs old-dirs mkpath links copy-links copy-unsafe-links safe-links munge-links copy-dirlinks keep-dirlinks hard-links perms executability chmod= acls xattrs owner group devices copy-devices write-devices specials times atimes open-noatime crtimes omit-dir-times omit-link-times super fake-super sparse preallocate dry-run whole-file checksum-choice= one-file-system block-size= rsh= rsync-path= existing ignore-existing remove-source-files delete delete-before delete-during delete-delay delete-after delete-excluded ignore-missing-args delete-missing-args ignore-errors force max-delete= max-size= min-size= max-alloc= partial partial-dir= delay-updates prune-empty-dirs numeric-ids usermap= groupmap= chown= timeout= contimeout= ignore-times size-only modify-window= temp-dir= fuzzy compare-dest= copy-dest= link-dest= compress compress-choice= compress-level= skip-compress= cvs-exclude filter= exclude= exclude-from= include= include-from= files-from= from0 old-args secluded-args trust-sender copy-as= address= port= sockopts= blocking-io outbuf= stats 8-bit-output human-readable progress itemize-changes remote-option= out-format= log-file= log-file-format= password-file= early-input= list-only bwlimit= stop-after= stop-at= fsync write-batch= only-write-batch= read-batch= protocol= iconv= checksum-seed= ipv4 ipv6 version help daemon config= dparam= no-detach',
    values: {
      '-e --rsh': 'rsync -e runs a remote-shell command that cannot be checked',
      '--rsync-path': 'rsync --rsync-path runs a command on the remote side that cannot be checked',
      '--files-from': NAMES_INSIDE('rsync --files-from'),
      '--daemon --config': 'rsync --daemon runs a server',
      '--exclude-from --include-from --password-file --read-batch --early-input': R,
      '--log-file --write-batch --only-write-batch': W,
    },
    recurse: '-r -a --recursive --archive',
    // By default rsync copies symlinks as symlinks (or skips them) and replaces a symlink on the receiver.
    sandboxOnly: {
      '-L --copy-links': 'copies the targets of symlinks',
      '-k --copy-dirlinks': 'copies the directories that symlinks point to',
      '--copy-unsafe-links': 'copies the targets of symlinks that point outside the tree',
      '-K --keep-dirlinks': 'writes through symlinks to directories in the destination',
    },
  },
  // Operands are host and port, or with -U a socket path (connecting needs write permission).
  'nc netcat ncat': {
    short: 'c:e:g:G:i:I:M:m:O:o:P:p:q:s:T:V:W:w:X:x:',
    long: 'exec= sh-exec= lua-exec= output= append-output hex-dump= unixsock proxy= proxy-type= source= source-port= wait= idle-timeout= listen keep-open udp sctp verbose',
    values: {
      '-e -c --exec --sh-exec --lua-exec': 'netcat -e/-c runs a program connected to the network',
      '-o --output -x --hex-dump': W,
    },
    operands: W | IFPATH,
  },

  // Wrappers: they run the command that follows their options.
  timeout: { kind: 'wrap', short: 'k:s:', long: 'kill-after= signal= preserve-status foreground verbose', stop: true, skip: 1 },
  nice: { kind: 'wrap', short: 'n:', long: 'adjustment=', stop: true },
  nohup: { kind: 'wrap', stop: true },
  stdbuf: { kind: 'wrap', short: 'i:o:e:', long: 'input= output= error=', stop: true },
  setsid: { kind: 'wrap', long: 'ctty fork wait', stop: true },
  ionice: { kind: 'wrap', short: 'c:n:p:P:u:', long: 'class= classdata= pid= pgid= uid= ignore', literal: '-p --pid -P --pgid -u --uid', stop: true },
  taskset: { kind: 'wrap', long: 'all-tasks pid cpu-list', literal: '-p --pid', stop: true, skip: 1 },
  chrt: { kind: 'wrap', short: 'T:P:D:', long: 'all-tasks batch deadline fifo idle other rr ext reset-on-fork sched-runtime= sched-period= sched-deadline= max pid verbose', literal: '-p --pid -m --max', stop: true, skip: 1 },
  unbuffer: { kind: 'wrap', stop: true },
  // util-linux, systemd, coreutils and others: each runs the command after its options.
  setpriv: {
    kind: 'wrap',
    short: 'd',
    long: 'dump nnp no-new-privs inh-caps= ambient-caps= bounding-set= clear-groups groups= init-groups keep-groups ruid= euid= reuid= rgid= egid= regid= securebits= pdeathsig= selinux-label= apparmor-profile= landlock-access= landlock-rule= reset-env',
    literal: '-d --dump',
    stop: true,
  },
  prlimit: {
    kind: 'wrap',
    short: 'p:o:',
    long: 'pid= output= noheadings raw verbose as? core? cpu? data? fsize? locks? memlock? msgqueue? nice? nofile? nproc? rss? rtprio? rttime? sigpending? stack?',
    literal: '-p --pid',
    stop: true,
  },
  choom: { kind: 'wrap', short: 'n:p:', long: 'adjust= pid=', literal: '-p --pid', stop: true },
  uclampset: { kind: 'wrap', short: 'm:M:p:', long: 'pid= all-tasks reset-on-fork system max= min= verbose', literal: '-p --pid --system', stop: true },
  'systemd-cat': { kind: 'wrap', short: 't:p:', long: 'identifier= priority= stderr-priority= level-prefix= namespace=', stop: true },
  'systemd-inhibit': { kind: 'wrap', long: 'what= who= why= mode= list no-pager no-legend no-ask-password', literal: '--list', stop: true },
  'dbus-run-session': {
    kind: 'wrap',
    long: 'config-file= dbus-daemon=',
    values: { '--config-file': R, '--dbus-daemon': RUNS('dbus-run-session --dbus-daemon') },
    stop: true,
  },
  fakeroot: {
    kind: 'wrap',
    short: 'l:s:i:u',
    long: 'lib= faked= unknown-is-real',
    values: { '-l --lib': 'fakeroot --lib loads a library into the command', '--faked': RUNS('fakeroot --faked'), '-s': W, '-i': R },
    alone: 'without a command starts a shell, which reads commands from its input',
    stop: true,
  },
  'ssh-agent': {
    kind: 'wrap',
    short: 'a:E:O:P:t:',
    values: { '-a': W, '-P': 'ssh-agent -P allows PKCS#11 libraries to be loaded' },
    alone: 'without a command starts an agent that outlives the command',
    stop: true,
  },
  // GNU time, run by path or quoted (the word time alone is the shell's).
  time: { kind: 'wrap', short: 'f:o:', long: 'format= output= append portability verbose quiet', values: { '-o --output': W }, stop: true },
  rlwrap: { kind: 'wrap', short: 'a::b:C:D:f:g:H:I:l:o:O:p::P:q:s:S:t:w:z:', values: { '-z': RUNS('rlwrap -z'), '-l -H': W, '-f': R }, stop: true },
  // setarch ARCH [options] [command]; links named after an architecture take no ARCH.
  'setarch linux32 linux64 i386 x86_64 uname26 i486 i586 i686 athlon ia64 ppc ppc32 ppc64 ppc64le s390 s390x sparc sparc32 sparc64 mips mips32 mips64 parisc parisc32 parisc64 arm64 aarch64': {
    kind: 'setarch',
    short: '3BFILRSTXZv',
    long: 'uname-2.6 verbose 3gb 4gb 32bit fdpic-funcptrs short-inode addr-compat-layout addr-no-randomize whole-seconds sticky-timeouts read-implies-exec mmap-page-zero list show?',
    literal: '--list --show',
    alone: 'without a command starts /bin/sh, which reads commands from its input',
    stop: true,
  },
  // Shell builtins that can reach argv[0] (some systems ship them as files; a remote shell runs them as builtins).
  exec: { kind: 'wrap', short: 'a:', values: { '-a': ARGV0('exec -a') }, stop: true },
  command: { kind: 'wrap', literal: '-v -V', stop: true },
  builtin: { kind: 'wrap', stop: true },
  doas: {
    kind: 'wrap',
    short: 'C:u:',
    values: { '-s': 'doas -s runs an interactive shell', '-C': 'doas -C reads a config file instead of running a command' },
    stop: true,
  },
  env: {
    kind: 'env',
    short: 'a:C:S:u:',
    long: 'argv0= ignore-environment null unset= chdir= split-string= block-signal? default-signal? ignore-signal? list-signal-handling debug',
    values: {
      '-S --split-string': 'env -S splits a string into a command line, which cannot be checked',
      '-C --chdir': 'env --chdir changes the working directory, so relative paths cannot be checked',
      '-a --argv0': ARGV0('env --argv0'),
    },
    stop: true,
  },
  sudo: {
    kind: 'sudo',
    short: 'a:C:c:D:g:h::p:R:r:t:T:U:u:',
    long: 'askpass auth-type= background bell close-from= chdir= preserve-env? edit group= set-home host= login remove-timestamp reset-timestamp list no-update non-interactive preserve-groups prompt= chroot= role= stdin shell type= command-timeout= other-user= user= validate',
    values: {
      '-s --shell -i --login': 'sudo -s/-i runs an interactive shell',
      '-e --edit': 'sudo -e runs an editor',
      '-A --askpass': RUNS('sudo --askpass'),
      '-D --chdir': 'sudo --chdir changes the working directory, so relative paths cannot be checked',
      '-R --chroot': 'sudo --chroot changes the root directory, so paths cannot be checked',
    },
    stop: true,
  },
  xargs: {
    kind: 'xargs',
    short: 'a:d:E:e::I:i::L:l::n:P:s:',
    long: 'arg-file= delimiter= eof? exit interactive max-args= max-chars= max-lines? max-procs= no-run-if-empty null open-tty process-slot-var= replace? show-limits verbose',
    values: { '-a --arg-file': R },
    stop: true,
  },
  flock: { kind: 'flock', short: 'w:E:', long: 'shared exclusive unlock nonblock nb close no-fork timeout= wait= conflict-exit-code= verbose fcntl', stop: true },
  'sh bash dash zsh ksh mksh ash posh yash lksh oksh pdksh rbash': { kind: 'shell' },
  eval: { kind: 'eval' },
  'busybox toybox': { kind: 'busybox' },
  find: { kind: 'find' },
  git: { kind: 'git' },

  // Programs that run code remux cannot read (ARCHITECTURE §1.3): each needs an execute_code grant and
  // then runs inside the OS sandbox. Besides these: POSIX shells with a script or their input (kind
  // 'shell'), and git, whose repository config and hooks name programs (see analysis.ts, git()).
  'python python2 python3 pypy pypy3 perl ruby node nodejs php lua luajit tclsh wish R Rscript julia deno bun jshell irb java':
    { kind: 'interp', reason: INTERPRETER },
  // Python scripts in the secure PATH that run Python code given to them: pydoc imports a module or file
  // it documents (`pydoc3 ./x.py` runs x.py), pdb runs the script it debugs.
  'pydoc pydoc3 pdb pdb3': { kind: 'interp', reason: 'runs the Python code it is given (pydoc imports what it documents, pdb runs its script), code that remux cannot check' },
  'make gmake': {
    kind: 'build',
    short: 'C:f:I:j::l::o:W:',
    long: 'directory= file= makefile= include-dir= jobs? load-average? old-file= assume-old= what-if= new-file= assume-new= eval=',
    values: { '-C --directory': R | L, '-f --file --makefile -I --include-dir': R },
    dflt: '.',
    reason: RUNS_PROJECT("a Makefile's recipes"),
  },
  'npm npx yarn pnpm': {
    kind: 'build',
    short: 'C:',
    long: 'prefix= dir= cwd=',
    values: { '--prefix -C --dir --cwd': R | L },
    dflt: '.',
    reason: RUNS_PROJECT("package scripts (package.json, installed packages' lifecycle scripts)"),
  },
  cargo: {
    kind: 'build',
    short: 'C:',
    long: 'manifest-path=',
    values: { '-C': R | L, '--manifest-path': R },
    dflt: '.',
    reason: RUNS_PROJECT('build scripts, procedural macros and tests'),
  },
  go: { kind: 'build', short: 'C:', values: { '-C': R | L }, dflt: '.', reason: RUNS_PROJECT('go generate directives, tests and cgo builds') },
  'run-parts': { kind: 'build', short: 'a:u:', long: 'test list report reverse verbose lsbsysinit regex= umask= arg= exit-on-error new-session', reason: RUNS_PROJECT('every program in a directory') },
  'pip pip3 pipx uv poetry tox nox pytest': {
    kind: 'build',
    short: 'r:c:t:',
    long: 'requirement= constraint= target= editable=',
    values: { '-r --requirement -c --constraint -e --editable': R, '-t --target': W },
    dflt: '.',
    reason: RUNS_PROJECT("a package's build or setup code, or the project's tests"),
  },

  // Container and cluster clients: their daemon or cluster runs images and commands out of remux's sight
  // (and a container engine's socket is root on the host). Every verb counts, read-only ones too: the
  // table has no per-verb execute_code.
  'docker podman nerdctl ctr crictl lxc incus docker-compose podman-compose kubectl oc helm minikube kind buildah lxc-attach lxc-execute':
    { kind: 'build', reason: RUNS_PROJECT('containers and commands in them') },

  // Plain programs but for forms that run commands or load code (their handlers in analysis.ts).
  ip: { kind: 'ip' },
  tc: { kind: 'tc' },
  zip: { kind: 'zip' },
  openssl: { kind: 'openssl' },
  // A package from the archive is what the system trusts already; a package file is code from anywhere
  // (its maintainer scripts), and some options name commands apt or dpkg run (the handlers).
  'apt apt-get': {
    kind: 'apt',
    short: 'a:c:o:t:',
    long: 'host-architecture= config-file= option= target-release= default-release=',
    values: { '-c --config-file': 'apt -c reads a configuration file, which can name commands to run (DPkg::Pre-Invoke…)' },
  },
  // Its actions (-i, -c, -L…) take no value: package files and names are operands, files read.
  dpkg: {
    kind: 'dpkg',
    short: 'D:',
    long: 'admindir= instdir= root= pre-invoke= post-invoke= path-include= path-exclude= status-fd= status-logger= log= abort-after= force-* no-force-* refuse-* ignore-depends= recursive',
    values: {
      '--pre-invoke --post-invoke --status-logger': 'dpkg --pre-invoke, --post-invoke and --status-logger run a shell command, which cannot be checked',
      '--admindir --instdir --root': R | W | L,
      '--log': W,
    },
  },

  // System settings and devices: the sysctl, mount and losetup handlers.
  sysctl: {
    kind: 'sysctl',
    short: 'p::r:',
    long: 'all deprecated dry-run binary ignore names values load? system pattern= quiet write help version',
    values: { '-p -f --load --system': 'sysctl -p/--system applies the settings that files list, which cannot be checked; use sysctl -w KEY=VALUE instead' },
  },
  mount: {
    kind: 'mount',
    short: 'L:m::N:o:O:t:T:U:',
    long: 'all no-canonicalize fake fork fstab= internal-only show-labels mkdir? no-mtab options-mode= options-source= options-source-force options= test-opts= read-only types= source= target= target-prefix= verbose rw read-write namespace= help version label= uuid= bind move rbind make-shared make-slave make-private make-unbindable make-rshared make-rslave make-rprivate make-runbindable onlyonce beneath map-users= map-groups=',
    reason: 'mounting makes files readable or writable at other paths (bind mounts, devices, images, fstab entries) and runs helper programs (mount.TYPE, FUSE), which cannot be checked; only listing the mounts is allowed',
  },
  losetup: {
    kind: 'losetup',
    short: 'b:c:d:j:o:O:',
    long: 'all detach= detach-all find set-capacity= associated= nooverlap offset= sizelimit= sector-size= partscan read-only direct-io? show verbose json list noheadings output= output-all raw help version',
    values: {
      '-d --detach -c --set-capacity': W,
      '-j --associated': R,
      '-D --detach-all': 'losetup -D detaches every loop device, whatever uses them',
    },
    reason: 'attaching a file to a loop device makes it readable and writable as /dev/loopN, whatever the policy says about the file',
  },

  // Refused: what they do cannot be checked from argv.
  'fish csh tcsh nu pwsh powershell xonsh elvish rc es': { kind: 'refuse', reason: 'not a POSIX shell: its command strings cannot be checked by the remux parser' },
  'chroot nsenter unshare bwrap firejail systemd-nspawn': { kind: 'refuse', reason: 'changes the root or namespaces, so paths cannot be checked' },
  'su runuser pkexec sudoedit run0 sg newgrp': { kind: 'refuse', reason: 'runs a shell or an editor as another user or group' },
  'systemd-run at batch crontab start-stop-daemon machinectl': { kind: 'refuse', reason: 'schedules a command to run outside remux' },
  'busctl dbus-send gdbus qdbus': { kind: 'refuse', reason: 'calls D-Bus methods, which can start programs outside remux (systemd units) or power the machine off (logind)' },
  'runcon capsh': { kind: 'refuse', reason: 'runs a command or a shell with other privileges (SELinux context, capabilities)' },
  'perf gpg-agent': { kind: 'refuse', reason: 'runs a command given in its arguments or options, in ways that cannot be checked' },
  'xdg-open sensible-browser': { kind: 'refuse', reason: 'opens a file or URL with whatever program the desktop names for it' },
  'watch parallel': { kind: 'refuse', reason: 'runs its arguments through a shell' },
  'screen tmux script scriptlive expect': { kind: 'refuse', reason: 'runs a shell or commands that cannot be checked' },
  'ed ex vi vim nvim view emacs vim.basic vim.tiny vim.nox vim.gtk3 rvim rview editor sensible-editor select-editor nano pico':
    { kind: 'refuse', reason: 'editors run commands read from their input' },
  'gdb strace ltrace valgrind': { kind: 'refuse', reason: 'debuggers and tracers run programs and commands that cannot be checked' },
  'socat cpio': { kind: 'refuse', reason: 'opens files or runs programs named in its data or addresses' },
  'dc m4 sqlite3 psql mysql mariadb gnuplot ftp sftp telnet mail mailx rename prename file-rename':
    { kind: 'refuse', reason: 'runs commands (which can start a shell or evaluate code) from its arguments or input' },
  mknod: { kind: 'refuse', reason: 'a device node reads or writes a disk or memory directly, whatever the policy says about their files; use mkfifo to make a FIFO' },
  '. source': { kind: 'refuse', reason: 'runs a shell script whose contents cannot be checked' },
  'cd pushd popd hash export unset set alias unalias readonly declare typeset local shopt enable trap ulimit umask read wait':
    { kind: 'refuse', reason: 'a shell builtin that changes the state (directory, PATH, environment) later commands run in' },
};

/** One spec per entry, under each of its space-separated names. */
function table(defs: Record<string, Def>): ReadonlyMap<string, ToolSpec> {
  return new Map(
    Object.entries(defs).flatMap(([names, d]) => {
      const s = spec(d);
      return words(names).map((n) => [n, s] as const);
    }),
  );
}

export const TOOLS = table(DEFS);

/** `python3.12` → `python3`, `pip3.11` → `pip3`: interpreters, shells and their package tools are often called by versioned names. */
const VERSIONED = /^([A-Za-z]+\d?)[\d.-]+$/;

/** The dynamic loader, by any of its names (ld-linux-x86-64.so.2, ld.so, ld-musl-x86_64.so.1, ld64.so.2). */
const LOADER = /^ld(?:64)?(?:-[A-Za-z0-9_.-]+)?\.so(?:\.\d+)*$/;
const LOADER_SPEC = spec({ kind: 'refuse', reason: 'the dynamic loader runs the program given to it, which cannot be checked' });

/**
 * mkfs.TYPE for a filesystem the table has no entry of its own for (mkfs.f2fs, mkfs.erofs). Which of its
 * options take a value, and what that names (another device, a file or a tree it copies in), is unknown:
 * counting the words after options as written paths would miss attached values and files read, so its
 * options are refused. Its operands may be a device, or a source tree and an image (mkfs.cramfs DIR FILE):
 * each counts as read recursively and written.
 */
const MKFS = /^mkfs\.[A-Za-z0-9_.-]+$/;
const MKFS_SPEC = spec({
  operands: R | W | L,
  unknownOptions:
    'remux does not know the options of this mkfs.TYPE, so it cannot tell what their values name (devices, files or directories it reads or writes); run it without options, or use one whose options remux knows (mkfs.ext4, mkfs.xfs, mkfs.btrfs, mkfs.fat)',
});

export function lookupTool(base: string): ToolSpec | undefined {
  const s = TOOLS.get(base);
  if (s !== undefined) return s;
  if (LOADER.test(base)) return LOADER_SPEC;
  if (MKFS.test(base)) return MKFS_SPEC;
  const m = VERSIONED.exec(base);
  if (m === null) return undefined;
  const v = TOOLS.get(m[1] as string) ?? TOOLS.get((m[1] as string).replace(/\d$/, ''));
  return v !== undefined && (v.kind === 'interp' || v.kind === 'shell' || v.kind === 'build') ? v : undefined;
}

/** Per-subcommand option tables for git (see analysis.ts). */
export const GIT_GLOBAL = spec({
  short: 'C:c:',
  long: 'version help exec-path? html-path man-path info-path paginate no-pager no-replace-objects no-lazy-fetch no-optional-locks no-advice bare git-dir= work-tree= namespace= config-env= super-prefix= literal-pathspecs glob-pathspecs noglob-pathspecs icase-pathspecs list-cmds= attr-source=',
  stop: true,
});

const DIFF_LONG = 'output= output-indicator-new= output-indicator-old= output-indicator-context= no-index ext-diff no-ext-diff textconv no-textconv relative? src-prefix= dst-prefix= line-prefix= stat? format= pretty? author= committer= grep= since= until= after= before= max-count= skip=';

export const GIT_SUBS = table({
  'diff log show whatchanged diff-tree diff-files diff-index range-diff': { short: 'n:O:', long: DIFF_LONG, values: { '--output': W, '-O': R } },
  'format-patch': { short: 'o:', long: `${DIFF_LONG} output-directory= cover-letter`, values: { '--output -o --output-directory': W } },
  archive: { short: 'o:', long: 'output= exec= remote= prefix= add-file= add-virtual-file= format= list verbose worktree-attributes', values: { '-o --output': W, '--add-file': R, '--exec': RUNS('git archive --exec') } },
  grep: {
    short: 'A:B:C:e:f:m:O::',
    long: 'open-files-in-pager? no-index untracked cached recurse-submodules file= max-depth= threads=',
    values: { '-f --file': R, '-O --open-files-in-pager': RUNS('git grep --open-files-in-pager') },
  },
  blame: { short: 'L:S:', long: 'contents= ignore-rev= ignore-revs-file= since= reverse', values: { '--contents -S --ignore-revs-file': R } },
  'clone init': {
    short: 'b:c:o:u:',
    long: 'config= template= upload-pack= separate-git-dir= reference= reference-if-able= origin= branch= depth= shallow-since= shallow-exclude= filter= jobs= bare mirror recurse-submodules?',
    values: {
      '-c --config': 'git clone --config sets options that can run programs',
      '--template': 'git --template installs hooks that cannot be checked',
      '-u --upload-pack': RUNS('git --upload-pack'),
      '--separate-git-dir': W,
      '--reference --reference-if-able': R,
    },
  },
  'fetch pull ls-remote': {
    long: 'upload-pack= exec= recurse-submodules? rebase? depth= deepen= shallow-since= shallow-exclude= refmap= jobs= negotiation-tip= server-option=',
    values: { '--upload-pack --exec': RUNS('git --upload-pack') },
  },
  push: { long: 'receive-pack= exec= repo= push-option= force-with-lease? signed? recurse-submodules=', values: { '--receive-pack --exec': RUNS('git push --receive-pack') } },
  rebase: { short: 'x:s:X:', long: 'exec= interactive strategy= strategy-option= onto= rebase-merges?', values: { '-x --exec': RUNS('git rebase --exec'), '-i --interactive': 'git rebase -i runs an editor' } },
  config: {
    short: 'f:',
    long: 'file= blob= global system local worktree get get-all get-regexp get-urlmatch list name-only show-origin show-scope includes no-includes type= default= null add unset unset-all replace-all rename-section remove-section edit',
    values: {
      '-f --file': R,
      '-e --edit --add --unset --unset-all --replace-all --rename-section --remove-section':
        'git config changes settings that can make git run programs (core.pager, core.fsmonitor, alias.*)',
    },
  },
  'hash-object': { long: 'stdin-paths path= literally stdin', values: { '--stdin-paths': 'git hash-object --stdin-paths reads file names from its input' } },
  apply: {
    short: 'p:C:',
    long: 'unsafe-paths unidiff-zero directory= exclude= include= whitespace= build-fake-ancestor= index cached intent-to-add 3way reject numstat stat summary check no-add binary allow-binary-replacement reverse recount inaccurate-eof verbose quiet allow-empty',
    values: { '--build-fake-ancestor': W },
    // Without it git apply refuses paths outside the working tree and beyond symlinks.
    sandboxOnly: { '--unsafe-paths': 'writes the paths that the patch names, wherever they are' },
  },
});

/** Subcommands without a table of their own. */
export const GIT_OTHER = spec({});

/** Subcommands that only read the repository; everything else in GIT_WRITES may also write it. */
export const GIT_READS = new Set(
  words(
    'status log show diff blame annotate grep ls-files ls-tree cat-file rev-parse rev-list describe shortlog show-ref for-each-ref name-rev merge-base count-objects fsck verify-commit verify-tag check-ignore check-attr diff-tree diff-files diff-index range-diff cherry whatchanged version help var ls-remote show-branch config archive format-patch hash-object',
  ),
);
export const GIT_WRITES = new Set(
  words(
    'add rm mv commit checkout switch restore reset clean merge rebase cherry-pick revert pull fetch stash apply am init clone gc prune repack worktree branch tag notes remote sparse-checkout update-index update-ref push pack-refs replace commit-tree mktag mktree read-tree write-tree symbolic-ref checkout-index merge-file rerere reflog bundle fast-import',
  ),
);
