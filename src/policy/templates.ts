// Starting points for `remux policy create`, written as commented YAML the user then edits.
import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Document, isMap, isScalar, isSeq, LineCounter, parseDocument, YAMLMap } from 'yaml';
import { withFileLock, writeAtomic } from '../config/atomic-file.js';
import { ConfigError } from '../config/source.js';
import { POLICY_NAME } from './schema.js';
import type { Effect, Operation } from './types.js';

export type TemplateName = 'restrictive' | 'read_only' | 'write_capable' | 'developer' | 'admin';
export const TEMPLATE_NAMES: readonly TemplateName[] = ['restrictive', 'read_only', 'write_capable', 'developer', 'admin'];

export interface TemplateCapability {
  operation: Operation;
  resource: string | string[] | null | { max_bytes?: number; redact?: Array<string | { from: string; to: string }> };
  effect?: Effect;
  reason?: string;
  unsandboxed?: boolean;
  sandbox?: boolean;
  /** Written as a comment above the capability. */
  comment?: string;
}

export interface Template {
  description: string;
  capabilities: TemplateCapability[];
}

const MiB = 1024 * 1024;

/**
 * Secrets that commonly turn up in logs; replaced before output leaves the host. Redaction works
 * line by line, so a private key (PEM: RSA, EC, ENCRYPTED, plain; or OPENSSH) is a block: every line
 * from its BEGIN marker through its END marker, short last body line included.
 */
const REDACT_SECRETS = [
  { from: '-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----', to: '-----END [A-Z0-9 ]*PRIVATE KEY-----' },
  // Not \b: `_` is a word character, and DB_PASSWORD=… or db_token: … must match too.
  '(?i)(?<![a-z0-9])(?:password|secret|token|api[_-]?key)\\s*[=:]\\s*\\S+',
  '(?i)\\bbearer\\s+[A-Za-z0-9._~+/-]+=*',
  '\\bAKIA[0-9A-Z]{16}\\b',
  '\\bgh[pousr]_[A-Za-z0-9]{36,}\\b',
  '\\bxox[abprs]-[A-Za-z0-9-]{10,}',
  '\\beyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}',
];

const READ_TOOLS = [
  'cat', 'head', 'tail', 'grep', 'zcat', 'zgrep', 'wc', 'ls', 'stat', 'du', 'find', 'sort', 'uniq', 'cut',
  'file', 'journalctl', 'id', 'whoami', 'uname',
];
/** Programs that report on the host itself: run outside the OS sandbox, whose own processes and disks they would report. */
const HOST_TOOLS = ['ps', 'df', 'uptime', 'free'];

const hostTools: TemplateCapability = {
  operation: 'execute_binary',
  resource: HOST_TOOLS,
  sandbox: false,
  comment:
    'Programs that report on the host itself. Inside the OS sandbox they would see only the sandbox:\n' +
    'its own processes (ps), its own root filesystem (df), no logged-in users (uptime). sandbox: false\n' +
    "runs them outside it, bounded by remux's static checks alone (ps e, which prints every process's\n" +
    'environment, counts as reading /proc/*/environ, which this policy does not grant); the rest of a\n' +
    'pipeline stays sandboxed: in ps aux | grep sshd, grep runs inside.',
};
const READ_TREES = ['/var/log/**', '/tmp/**'];

/** The developer template's workspace unless `policy create --workspace DIR` names one: a placeholder the user edits. */
const WORKSPACE_PLACEHOLDER = '${HOME}/projects';
const DEV_TOOLS = [
  'cat', 'head', 'tail', 'grep', 'rg', 'ls', 'find', 'wc', 'sort', 'uniq', 'cut', 'tr', 'diff', 'cmp', 'sed', 'awk',
  'stat', 'du', 'file', 'basename', 'dirname', 'realpath', 'echo', 'printf', 'true', 'false', 'test', 'env', 'xargs',
  'mkdir', 'touch', 'cp', 'mv', 'rm', 'rmdir', 'ln', 'tee', 'tar', 'gzip', 'patch',
];
/** Programs the developer template lets run project code (execute_code). */
const CODE_RUNNERS = ['python3', 'node', 'npm', 'npx', 'make', 'git', 'bash', 'sh', 'cargo', 'go', 'pip'];

const limitedOutput = (maxBytes: number): TemplateCapability => ({
  operation: 'write_stdout',
  resource: { max_bytes: maxBytes, redact: REDACT_SECRETS },
  comment:
    `Output reaches the caller only up to ${maxBytes / MiB} MiB, with common secrets redacted\n` +
    '(regexes applied line by line; a (?i) prefix makes one case-insensitive; a { from, to } entry\n' +
    'redacts every line from one matching from through the next one matching to).',
});

const readOnlyCapabilities: TemplateCapability[] = [
  {
    operation: 'execute_binary',
    resource: READ_TOOLS,
    comment:
      'Read-only tools, looked up in the secure PATH. Their writing options count as writes, which\n' +
      'this policy does not grant (sort -o, find -delete), or are refused (journalctl --vacuum-*).\n' +
      'Deliberately absent: sed and awk (can write files or run commands), less (interactive),\n' +
      'date and hostname (date -s and hostname NAME change the host).',
  },
  hostTools,
  { operation: 'read_file', resource: READ_TREES, comment: '/var/log/** covers /var/log itself and everything below it.' },
  { operation: 'list_directory', resource: READ_TREES, comment: 'ls, du, find and grep -r need to list directories.' },
  limitedOutput(10 * MiB),
];

/** The developer template for a workspace (a path resource: absolute, escaped for the policy grammar). */
function developerTemplate(workspace: string): Template {
  return {
    description: 'An agent working in a repository: its workspace, common dev tools, project code run in the OS sandbox',
    capabilities: [
      {
        operation: 'execute_binary',
        resource: [...DEV_TOOLS, ...CODE_RUNNERS],
        comment:
          'Common tools for working in a repository. What they may read and change is limited by the\n' +
          'workspace rules below; programs that run project code also need the execute_code rule.',
      },
      {
        operation: 'execute_code',
        resource: CODE_RUNNERS,
        comment:
          'Programs that run code remux cannot check: scripts (python3 x.py, bash x.sh), Makefiles, package\n' +
          'scripts (npm test), build scripts (cargo, go), git hooks and repository config. Such a command\n' +
          'runs only inside the OS sandbox, which shows it the workspace (writable) and the system\n' +
          'directories (read-only), nothing else, and no network.',
      },
      {
        operation: 'read_file',
        resource: `${workspace}/**`,
        comment:
          workspace === WORKSPACE_PLACEHOLDER
            ? 'The workspace: edit this path to where your repositories are (${HOME} is taken from the\n' +
              "environment of whoever loads the policy: the daemon's user), or create the policy with --workspace DIR."
            : 'The workspace (policy create --workspace).',
      },
      { operation: 'list_directory', resource: `${workspace}/**` },
      {
        operation: 'write_file',
        resource: `${workspace}/**/*`,
        comment: 'Anything inside the workspace, but not the workspace directory itself.',
      },
      {
        ...limitedOutput(10 * MiB),
        comment:
          'No network rule: nothing here reaches the network (npm install, pip install, git fetch fail).\n' +
          'Add `- operation: network` to let package managers download.\n' +
          'Output is limited to 10 MiB with common secrets redacted.',
      },
    ],
  };
}

export const TEMPLATES: Record<TemplateName, Template> = {
  restrictive: {
    description: 'Nothing but what you add',
    capabilities: [
      {
        ...limitedOutput(MiB),
        comment:
          'Grants no program and no path: add what this policy should allow, for example\n' +
          '  - operation: execute_binary\n    resource: cat|grep\n' +
          '  - operation: read_file\n    resource: /srv/app/logs/**\n' +
          'Output (once something may run) is limited to 1 MiB with common secrets redacted.',
      },
    ],
  },
  read_only: {
    description: 'Common read tools over /var/log and /tmp',
    capabilities: readOnlyCapabilities,
  },
  write_capable: {
    description: 'read_only, plus creating, copying and removing files inside /tmp',
    capabilities: [
      ...readOnlyCapabilities,
      {
        operation: 'execute_binary',
        resource: ['cp', 'mv', 'mkdir', 'rmdir', 'touch', 'tee', 'rm'],
        comment: 'File tools; what they may change is limited by the write_file rule below.',
      },
      {
        operation: 'write_file',
        resource: '/tmp/**/*',
        comment: 'Anything inside /tmp, but not /tmp itself (/tmp/** would also allow rm -r /tmp).',
      },
    ],
  },
  developer: developerTemplate(WORKSPACE_PLACEHOLDER),
  admin: {
    description: 'Everything, with approval before destructive programs, code remux cannot check and sensitive files',
    capabilities: [
      {
        ...hostTools,
        comment:
          'Programs that report on the host itself run outside the OS sandbox (sandbox: false), which\n' +
          'would show them only its own processes and root filesystem. First: the first allow rule that\n' +
          'matches a program decides, and /** below keeps what it allows in the sandbox.',
      },
      {
        operation: 'execute_binary',
        resource: '/**',
        comment: 'Any program: bare names are looked up in the secure PATH, paths may be anywhere.\n' +
          '(A lone * instead allows any program found in the secure PATH, and nothing else.)',
      },
      { operation: 'read_file', resource: '/**', comment: 'Every path.' },
      { operation: 'write_file', resource: '/**' },
      { operation: 'list_directory', resource: '/**' },
      { operation: 'write_stdout', resource: null, comment: 'All output, unlimited and unredacted.' },
      {
        operation: 'execute_binary',
        effect: 'ask',
        resource: ['rm', 'shred', 'dd', 'mkfs', 'mke2fs', 'mkfs.ext2', 'mkfs.ext3', 'mkfs.ext4', 'mkfs.xfs', 'mkfs.btrfs', 'mkfs.vfat', 'mkfs.fat', 'mkswap', 'fdisk', 'sfdisk', 'wipefs', 'blkdiscard', 'shutdown', 'reboot', 'poweroff', 'halt', 'kexec', 'telinit', 'init', 'kill', 'pkill', 'killall'],
        reason: 'destructive or disruptive program',
        comment:
          'ask beats allow: these run only after someone approves. Names match however the program is\n' +
          'run (/usr/bin/rm, a link to it), and systemctl halt|poweroff|reboot|kexec counts as the program of\n' +
          'that name, as does systemctl start|isolate of its target (poweroff.target); systemctl\n' +
          'rescue|emergency|suspend|hibernate|hybrid-sleep|suspend-then-hibernate|sleep and their targets count\n' +
          'as shutdown (they take the machine off the network or off-line). Other mkfs variants\n' +
          '(mkfs.f2fs…) are programs of their own: add them.',
      },
      {
        operation: 'execute_code',
        effect: 'ask',
        resource: '*',
        reason: 'runs code remux cannot check',
        comment:
          'Scripts (python3 x.py, bash x.sh), Makefiles, package scripts (npm test), git hooks and the\n' +
          "programs a repository's config names: whatever such code does (rm included) is invisible to the\n" +
          'rules above, so it runs only after someone approves, inside the OS sandbox. To let some run\n' +
          'without approval, add an allow rule for them, e.g. resource: git|make.',
      },
      {
        operation: 'write_file',
        effect: 'ask',
        resource: ['/etc/**', '/boot/**'],
        reason: 'system configuration',
      },
      {
        operation: 'read_file',
        effect: 'ask',
        resource: ['/etc/shadow', '/etc/gshadow', '/**/.ssh/**'],
        reason: 'credentials',
      },
    ],
  },
};

const HEADER = `remux policies. Each policy lists capabilities; a command runs only if every program it
starts, every path it reads, writes or lists, and its output are allowed.
  effect: allow (default) | ask (needs approval) | deny. deny beats ask beats allow; no match denies.
  Paths are absolute globs matched after symlinks are resolved, by whole segments:
    * and ? stay within one segment, ** spans directories (/var/log/** includes /var/log).
  Programs: bare names (looked up in the secure PATH; * = any program there), or absolute path globs.
  A resource is a list, or a string of a|b|c alternatives.
  \${VAR} and \${VAR:-default} are taken from the environment; $$ is a literal $.`;

// No folding: program lists stay on one line instead of one name per line.
const STRINGIFY = { lineWidth: 0 } as const;

const asComment = (text: string): string =>
  text
    .split('\n')
    .map((l) => ` ${l}`)
    .join('\n');

function policyNode(doc: Document, template: Template): YAMLMap {
  const capabilities = template.capabilities.map(({ comment: _comment, ...cap }) => cap);
  // Templates share arrays (read_only's trees in write_capable); the file should not show them as &anchors.
  const node = doc.createNode({ description: template.description, sandbox: true, capabilities }, { aliasDuplicateObjects: false }) as YAMLMap;
  const sandbox = node.items.find((pair) => isScalar(pair.key) && pair.key.value === 'sandbox')?.key;
  if (isScalar(sandbox)) {
    sandbox.commentBefore = asComment(
      'Commands run in the OS sandbox (bubblewrap): only the paths below are visible, writable only where\n' +
        'write_file allows, no network, no capabilities. required: also refuse SSH hosts without bubblewrap\n' +
        '(true runs there with static checks only). false: static checks only, everywhere.',
    );
  }
  const items = node.get('capabilities', true);
  if (!isSeq(items)) throw new Error('template capabilities did not become a sequence');
  items.items.forEach((item, i) => {
    const comment = template.capabilities[i]?.comment;
    if (!isMap(item)) return;
    if (comment) item.commentBefore = asComment(comment);
    // Lists of names read best on one line: resource: [cat, head, tail]
    const resource = item.get('resource', true);
    if (isSeq(resource) && resource.items.every(isScalar)) resource.flow = true;
  });
  return node;
}

/** What `policy create` may set in a template: the developer template's workspace (a real, absolute directory). */
export interface TemplateOptions {
  workspace?: string;
}

/**
 * A directory as the policy grammar reads it: `$` doubled (${VAR} is expanded), and refused where a character
 * would be read as a glob or as `|` alternatives (the path could not be named exactly).
 */
export function workspaceResource(dir: string): string {
  if (!dir.startsWith('/')) throw new Error(`the workspace must be an absolute path, not ${JSON.stringify(dir)}`);
  const path = dir.replace(/\/+$/, '');
  if (path === '') throw new Error('the workspace cannot be / (every path): name the directory your repositories are in');
  const special = /[*?[{|]/.exec(path);
  if (special) throw new Error(`the workspace ${JSON.stringify(path)} has ${JSON.stringify(special[0])}, which a policy path reads as a glob or as alternatives: use a directory without it`);
  return path.replaceAll('$', '$$$$');
}

function templateFor(templateName: TemplateName, options: TemplateOptions): Template {
  if (options.workspace === undefined) return TEMPLATES[templateName];
  if (templateName !== 'developer') throw new Error(`a workspace is the developer template's; the ${templateName} template has none`);
  return developerTemplate(workspaceResource(options.workspace));
}

function addPolicy(doc: Document, policies: YAMLMap, name: string, templateName: TemplateName, options: TemplateOptions): void {
  const key = doc.createNode(name);
  key.commentBefore = asComment(`${name}: from the ${templateName} template`);
  policies.add(doc.createPair(key, policyNode(doc, templateFor(templateName, options))));
}

/** A policy file holding one policy made from a template. */
export function renderTemplate(templateName: TemplateName, policyName: string, options: TemplateOptions = {}): string {
  checkName(policyName);
  const doc = new Document({ policies: {} });
  doc.commentBefore = asComment(HEADER);
  addPolicy(doc, doc.get('policies', true) as YAMLMap, policyName, templateName, options);
  return doc.toString(STRINGIFY);
}

/**
 * Creates `file` with the policy, or adds the policy under `policies:` of an existing file, keeping its
 * content and comments. Refuses (ConfigError naming file and line) if the name is already there.
 */
export function addPolicyToFile(file: string, policyName: string, templateName: TemplateName, options: TemplateOptions = {}): { created: boolean } {
  checkName(policyName);
  templateFor(templateName, options); // a bad option is refused before the file is touched
  // Two `policy create` at once queue up instead of one overwriting the other's policy.
  return withFileLock(file, () => addPolicyLocked(file, policyName, templateName, options));
}

function addPolicyLocked(file: string, policyName: string, templateName: TemplateName, options: TemplateOptions): { created: boolean } {
  if (!existsSync(file)) {
    createExclusive(file, renderTemplate(templateName, policyName, options));
    return { created: true };
  }
  const text = readFileSync(file, 'utf8');
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const lineOf = (offset: number | undefined): number => (offset === undefined ? 1 : lineCounter.linePos(offset).line);
  if (doc.errors.length > 0) {
    throw ConfigError.of(doc.errors.map((e) => ({ file, line: lineOf(e.pos[0]), detail: e.message })));
  }
  if (doc.contents === null) doc.contents = doc.createNode({}) as unknown as typeof doc.contents;
  if (!isMap(doc.contents)) throw new ConfigError(file, lineOf(doc.contents?.range?.[0]), 'expected a mapping with a policies: key');
  let policies: unknown = doc.contents.get('policies', true);
  if (policies === undefined || (isScalar(policies) && policies.value === null)) {
    policies = new YAMLMap();
    (doc.contents as YAMLMap).set('policies', policies);
  }
  if (!isMap(policies)) throw new ConfigError(file, lineOf(doc.contents.range?.[0]), 'policies: must be a mapping of policy names');
  const existing = policies.items.find((p) => isScalar(p.key) && String(p.key.value) === policyName);
  if (existing) {
    const line = lineOf(isScalar(existing.key) ? existing.key.range?.[0] : undefined);
    const taken = new ConfigError(file, line, `policy "${policyName}" already exists`);
    taken.hint = `the file is left as it was: choose another name, or edit policy ${policyName} there`;
    throw taken;
  }
  // A `policies: {}` written by hand would otherwise keep the new policy on one flow-style line.
  policies.flow = false;
  addPolicy(doc, policies, policyName, templateName, options);
  writeAtomic(file, doc.toString(STRINGIFY), { keepMode: true });
  return { created: false };
}

/** Why `name` cannot name a policy, or null if it can. */
export function policyNameProblem(name: string): string | null {
  return POLICY_NAME.test(name) ? null : `invalid policy name ${JSON.stringify(name)}: use 1-64 characters of A-Z a-z 0-9 _ . -`;
}

function checkName(name: string): void {
  const problem = policyNameProblem(name);
  if (problem !== null) throw new Error(problem);
}

function tempNameFor(file: string): string {
  return join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Writes a complete file (0600, as remux makes its config files) that appears at once, and never over a file created meanwhile. */
function createExclusive(file: string, text: string): void {
  const temp = tempNameFor(file);
  writeFileSync(temp, text, { flag: 'wx', mode: 0o600 });
  try {
    linkSync(temp, file); // fails with EEXIST instead of replacing
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ConfigError(file, 0, 'was created by someone else meanwhile; not overwritten');
    throw err;
  } finally {
    unlinkSync(temp);
  }
}
