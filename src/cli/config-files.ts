// `remux config init` and `remux config show`: creating and describing the user's files.
import { closeSync, existsSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { AuditStore } from '../audit/store.js';
import { cliPrincipal, defaultConfigText, loadConfig, type Config } from '../config/config.js';
import { auditDbFile, configFile, policiesFile, principalsFile, remuxHome } from '../config/paths.js';
import { ADMIN_SCOPE, addPrincipal, loadPrincipals } from '../config/principals.js';
import { bwrapAvailable } from '../exec/sandbox.js';
import { loadPolicyFile } from '../policy/load.js';
import { addPolicyToFile } from '../policy/templates.js';

/** Templates written into a fresh policies.yaml. `admin` is left out on purpose: create it explicitly. */
const INITIAL_POLICIES = ['read_only', 'write_capable', 'restrictive'] as const;

export interface InitReport {
  home: string;
  files: Array<{ path: string; status: 'created' | 'kept' }>;
  /** The `admin` principal made with a fresh principals file: its token, shown this once. */
  admin: { name: string; token: string } | null;
}

/** Creates a file with mode 0600 only if it does not exist (O_EXCL): never overwrites. */
function createExclusive(path: string, content: string): boolean {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

export function initConfig(): InitReport {
  const home = remuxHome();
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const files: InitReport['files'] = [];
  const note = (path: string, created: boolean): void => {
    files.push({ path, status: created ? 'created' : 'kept' });
  };

  note(configFile(), createExclusive(configFile(), defaultConfigText()));

  const policies = policiesFile();
  if (existsSync(policies)) {
    note(policies, false);
  } else {
    for (const template of INITIAL_POLICIES) addPolicyToFile(policies, template, template);
    note(policies, true);
  }

  // A first principal, so the daemon's web console and API can start (they refuse to without one).
  const principals = principalsFile();
  const admin = existsSync(principals) ? null : { name: 'admin', token: addPrincipal(principals, 'admin', ADMIN_SCOPE) };
  note(principals, admin !== null);

  const auditPath = auditDbFile();
  const auditExisted = existsSync(auditPath);
  AuditStore.open(auditPath).close();
  note(auditPath, !auditExisted);
  return { home, files, admin };
}

export interface ConfigView {
  home: string;
  files: Record<'config' | 'policies' | 'audit' | 'principals', { path: string; exists: boolean }>;
  /** Names of the configured principals (never their tokens or hashes). */
  principals: string[];
  config: Config;
  principal: string;
  policies: string[];
  sandbox: ReturnType<typeof bwrapAvailable>;
  /** remux variables set in the environment (values shown; none of them is a secret). */
  environment: Record<string, string>;
}

export function describeConfig(): ConfigView {
  const { config } = loadConfig();
  const file = (path: string): { path: string; exists: boolean } => ({ path, exists: existsSync(path) });
  const policies = file(policiesFile());
  const environment: Record<string, string> = {};
  for (const name of ['REMUX_HOME', 'REMUX_POLICY_CONFIG', 'REMUX_AUDIT_DB', 'RPIPE_POLICY_CONFIG', 'RPIPE_AUDIT_LOG_DIR']) {
    const value = process.env[name];
    if (value) environment[name] = value;
  }
  return {
    home: remuxHome(),
    files: { config: file(configFile()), policies, audit: file(auditDbFile()), principals: file(principalsFile()) },
    principals: loadPrincipals(principalsFile()).entries.map((e) => e.name),
    config,
    principal: cliPrincipal(config),
    policies: policies.exists ? [...loadPolicyFile(policies.path).keys()] : [],
    sandbox: bwrapAvailable(),
    environment,
  };
}
