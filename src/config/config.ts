// config.yaml: the few settings remux needs beyond its policies. Every key has a default,
// so a missing file means "defaults"; a present file is validated strictly (unknown keys are errors).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { parse } from 'yaml';
import { z } from 'zod';
import { MAX_TIMER_MS } from '../core/timers.js';
import { ChannelSchema } from '../notify/channels.js';
import { parseSource, readSourceText, validate } from './source.js';
import { configFile } from './paths.js';

export const DEFAULT_SECURE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const ExecSchema = z
  .object({
    /** Wall-clock limit for one command list; null = none. Beyond what a timer holds (2^31-1 ms) it would fire at once. */
    timeout_seconds: z.number().positive().max(Math.floor(MAX_TIMER_MS / 1000), `at most ${Math.floor(MAX_TIMER_MS / 1000)} (about 24 days; null for no limit)`).nullable().default(300),
    /** Programs named without a path are looked up here only, never in the caller's $PATH. */
    secure_path: z
      .string()
      .refine((p) => p.split(':').every((d) => d.startsWith('/')), 'every entry must be an absolute directory')
      .default(DEFAULT_SECURE_PATH),
    /** Pipeline status = last non-zero stage (bash `set -o pipefail`) instead of the last stage's. */
    pipefail: z.boolean().default(false),
  })
  .strict();

const SshSchema = z
  .object({
    /** known_hosts file; REMUX_KNOWN_HOSTS (alias RPIPE_KNOWN_HOSTS) and --known-hosts override it. */
    known_hosts: z.string().min(1).optional(),
    connect_timeout_seconds: z.number().positive().default(10),
    keepalive_interval_seconds: z.number().positive().default(15),
    /** Concurrent channels per connection; keep at or below the server's MaxSessions (sshd default 10). */
    max_channels: z.number().int().positive().default(10),
    breaker: z
      .object({
        failure_threshold: z.number().int().positive().default(3),
        cooldown_seconds: z.number().positive().default(10),
      })
      .strict()
      .prefault({}),
    backoff: z
      .object({ base_ms: z.number().int().positive().default(500), cap_ms: z.number().int().positive().default(30_000) })
      .strict()
      .prefault({}),
  })
  .strict();

const DaemonSchema = z
  .object({
    /** Unix socket; REMUX_SOCKET (alias RPIPE_SOCKET) and --socket override it. */
    socket: z.string().min(1).optional(),
    /** Per-principal token bucket for requests to the daemon. */
    rate_limit: z
      .object({ requests_per_second: z.number().positive().default(50), burst: z.number().int().positive().default(100) })
      .strict()
      .prefault({}),
    /**
     * Commands running at once (each host of a fan-out counts, from its policy decision to its end): past
     * either, the next is refused (exit 75, HTTP 429) rather than started.
     */
    running_limit: z
      .object({ per_principal: z.number().int().positive().default(64), total: z.number().int().positive().default(512) })
      .strict()
      .prefault({}),
  })
  .strict();

/**
 * Variables that move an agent's settings and instructions out of the home directory, where an agent
 * session's sandbox keeps them read-only (agents/launch.ts): passed in, code in the sandbox could rewrite
 * what the next start of the agent runs.
 */
const RELOCATES_AGENT_HOME: Record<string, string> = {
  CLAUDE_CONFIG_DIR: "moves Claude Code's settings out of ~/.claude, where the sandbox keeps them read-only",
  CODEX_HOME: "moves codex's settings out of ~/.codex, where the sandbox keeps them read-only",
  GEMINI_CLI_HOME: "moves gemini's settings out of ~/.gemini, where the sandbox keeps them read-only",
  GEMINI_CLI_TRUSTED_FOLDERS_PATH: "moves gemini's trusted folders out of ~/.gemini, where the sandbox keeps them read-only",
};

const SessionsSchema = z
  .object({
    /** How often the daemon re-reads every host's tmux sessions into its cache (listing reads the cache). */
    sweep_interval_seconds: z.number().positive().default(60),
    /** An attach (CLI or browser terminal) is closed after this long, and its tmux client with it. */
    attach_lifetime_seconds: z.number().positive().default(6 * 3600),
    /**
     * What is recorded (asciicast v2 in $REMUX_HOME/recordings): `attaches`, each attach (browser or CLI);
     * `sessions`, each session the daemon creates, whole, from its creation to its end (an attach to a
     * session without such a recording is recorded as an attach); `none`, nothing.
     */
    record: z.enum(['attaches', 'sessions', 'none']).default('attaches'),
    /**
     * The daemon removes the oldest recordings while all of them together take more than this (MB), so
     * they never fill the disk the audit store needs; null: no limit.
     */
    recordings_max_total_mb: z.number().positive().nullable().default(10240),
    /** Recordings older than this many days are removed; null: kept until the size limit needs room. */
    recordings_keep_days: z.number().positive().nullable().default(null),
  })
  .strict();
const RelaySchema = z
  .object({
    /** Networks outbound agents may connect from (CIDR blocks); empty: any. */
    allow_networks: z.array(z.string().min(1)).default([]),
    /** Proxies in front of the daemon whose X-Forwarded-For entry is believed (addresses or CIDR blocks). */
    trusted_proxies: z.array(z.string().min(1)).default([]),
    /** The daemon pings every agent this often; one that misses the pong deadline is down (a dead agent is noticed within the two together). */
    ping_interval_seconds: z.number().positive().default(2),
    pong_timeout_seconds: z.number().positive().default(3),
    /** Control requests (path lookups, opening a terminal) fail after this long without an answer. */
    request_timeout_seconds: z.number().positive().default(30),
  })
  .strict();
const HttpSchema = z
  .object({
    /** Where the web console and HTTP API listen (HOST:PORT, [IPv6]:PORT); --listen overrides it. */
    listen: z.string().min(1).default('127.0.0.1:7777'),
    /** PEM files; both or neither. Neither: one the daemon makes, kept in $REMUX_HOME/tls. */
    tls_cert: z.string().min(1).optional(),
    tls_key: z.string().min(1).optional(),
    /** Plain HTTP: allowed on a loopback address only (`--no-tls`); elsewhere also needs insecure_no_tls. */
    tls: z.boolean().default(true),
    insecure_no_tls: z.boolean().default(false),
    /** Browser origins allowed besides the daemon's own (e.g. https://remux.example.com:7777), exact match. */
    origins: z.array(z.url().refine((u) => new URL(u).origin === u, 'write an origin: scheme://host[:port], no path or trailing slash')).default([]),
    /** Lifetime of a browser login. */
    session_hours: z.number().positive().default(12),
    /** Proxies in front of the console and API whose X-Forwarded-For entry is believed (addresses or CIDR blocks). */
    trusted_proxies: z.array(z.string().min(1)).default([]),
    /** A request (headers and body) must have arrived whole within this; answers and WebSockets take as long as they need. */
    request_timeout_seconds: z.number().min(1).default(120),
  })
  .strict()
  .refine((h) => (h.tls_cert === undefined) === (h.tls_key === undefined), { message: 'tls_cert and tls_key go together', path: ['tls_cert'] });

const NotifySchema = z
  .object({
    /** Where the links in messages point (the console as a phone reaches it); default: the console's own URL. */
    base_url: z
      .url()
      .refine((u) => ['http:', 'https:'].includes(new URL(u).protocol), 'an http or https URL')
      // The console is served at the root of its address: links made from a path would lose it.
      .refine((u) => {
        const url = new URL(u);
        return url.pathname === '/' && url.search === '' && url.hash === '';
      }, "the console's address only, as https://HOST[:PORT] (the console is served at the root: a path, query or fragment would be left out of the links)")
      .optional(),
    /** Every channel gets every message (at or above its min_priority). */
    channels: z.array(ChannelSchema).default([]),
    /** Messages one asker (an agent session) may send at once and then per minute, and all together: beyond, held and counted. */
    flood: z
      .object({
        burst: z.number().int().positive().default(10),
        per_minute: z.number().positive().default(10),
        overall_burst: z.number().int().positive().default(30),
        overall_per_minute: z.number().positive().default(30),
      })
      .strict()
      .prefault({}),
  })
  .strict();

const ApprovalsSchema = z
  .object({
    /** How long a policy `ask` waits for an answer; no answer by then is a denial. */
    timeout_seconds: z.number().positive().max(7 * 24 * 3600).default(300),
    /** How often the running daemon withdraws the questions whose asker ended (killed, crashed): answered, they would reach nobody. */
    orphan_sweep_seconds: z.number().positive().max(3600).default(30),
  })
  .strict();

export const AGENT_NAMES = ['claude', 'codex', 'gemini', 'aider'] as const;
const DomainSchema = z.string().regex(/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/i, 'a domain name (example.com or *.example.com)');
const AgentsSchema = z
  .object({
    /** What `remux code start` runs without --agent: one of the known agents or a command line. */
    default_agent: z.string().min(1).default('claude'),
    /** srt (sandbox-runtime: bubblewrap + domain-allowlist proxies), docker, or none. */
    default_sandbox: z.enum(['srt', 'docker', 'none']).default('srt'),
    /** Domains an agent's sandbox may reach, per agent (custom commands use `custom`); replaces the default list. */
    network: z.partialRecord(z.enum([...AGENT_NAMES, 'custom']), z.array(DomainSchema)).default({}),
    /** Domains every agent may reach besides its own list. */
    extra_domains: z.array(DomainSchema).default([]),
    /** Paths no agent may read (besides ~/.ssh, ~/.gnupg, ~/.aws, which are always denied). */
    deny_read: z.array(z.string().min(1)).default([]),
    /** Credential files or directories an agent may read but never change (they stay read-only inside). */
    credentials: z.array(z.string().min(1)).default([]),
    /** Environment variables a sandboxed (srt) agent also gets, besides the basic ones and its own keys. */
    pass_env: z
      .array(
        z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
          .refine((name) => !(name in RELOCATES_AGENT_HOME), { error: (issue) => `${String(issue.input)} ${RELOCATES_AGENT_HOME[String(issue.input)]}: leave it out` }),
      )
      .default([]),
    /** Docker backend: image and limits. */
    docker: z
      .object({
        // After the options on docker's command line: a leading "-" would make it one (--privileged).
        image: z.string().regex(/^[^-\s]\S*$/, 'an image reference (node:20-bookworm-slim), not starting with "-"').default('node:20-bookworm-slim'),
        memory: z.string().regex(/^\d+[kmg]?$/i, 'a size like 4g or 512m').default('4g'),
        pids_limit: z.number().int().positive().default(512),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const ConfigSchema = z
  .object({
    /** Policy used when a command names none. */
    default_policy: z.string().min(1).default('read_only'),
    /** Name recorded as the principal of CLI actions; default cli:<login name>. */
    principal: z.string().min(1).optional(),
    exec: ExecSchema.prefault({}),
    ssh: SshSchema.prefault({}),
    daemon: DaemonSchema.prefault({}),
    http: HttpSchema.prefault({}),
    /** Hosts a fan-out works on at once. */
    fanout: z.object({ concurrency: z.number().int().positive().default(32) }).strict().prefault({}),
    sessions: SessionsSchema.prefault({}),
    notify: NotifySchema.prefault({}),
    approvals: ApprovalsSchema.prefault({}),
    relay: RelaySchema.prefault({}),
    agents: AgentsSchema.prefault({}),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;

export interface LoadedConfig {
  config: Config;
  /** The file read, or null when none exists and defaults are in force. */
  file: string | null;
  /** configDigest of the file read; null when none exists. */
  digest: string | null;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  return loadConfigFile(configFile(env), env);
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  if (!existsSync(file)) return { config: ConfigSchema.parse({}), file: null, digest: null };
  // Read once: the digest is of the very text the settings come from.
  const text = readSourceText(file);
  const doc = parseSource(text, file, env);
  // An empty file parses to null: treat it as "all defaults".
  const value = doc.value ?? {};
  return { config: validate({ ...doc, value }, ConfigSchema), file, digest: configDigest(text) };
}

/**
 * What a config.yaml says, as a digest that a running daemon's can be compared with: its settings as
 * written (before ${VAR} expansion, which depends on the reader's environment), keys sorted, so that
 * a touch, a comment or a change of layout is no change. Throws on text that is not YAML.
 */
export function configDigest(text: string): string {
  const sortKeys = (_key: string, v: unknown): unknown =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v;
  return createHash('sha256').update(JSON.stringify(parse(text) ?? null, sortKeys)).digest('hex');
}

/** configDigest of FILE as it is now; null when it does not exist. */
export function configFileDigest(file: string): string | null {
  return existsSync(file) ? configDigest(readSourceText(file)) : null;
}

export function cliPrincipal(config: Config): string {
  if (config.principal) return config.principal;
  let login: string;
  try {
    login = userInfo().username;
  } catch {
    login = `uid${process.getuid?.() ?? '?'}`;
  }
  return `cli:${login}`;
}

/** The commented config.yaml that `remux config init` writes. */
export function defaultConfigText(): string {
  return `# remux configuration. Every key is optional; shown values are the defaults.
# Reference: README.md, "Configuration".

# Policy applied when a command does not name one with --policy.
default_policy: read_only

# Name recorded as the principal of actions started from this CLI (default: cli:<login name>).
# principal: ops-alice

exec:
  # Wall-clock limit for one command (null = no limit). Timeouts kill the whole process group.
  timeout_seconds: 300
  # Programs named without a path are looked up here only, never in the caller's $PATH.
  secure_path: ${DEFAULT_SECURE_PATH}
  # Status of a pipeline = last non-zero stage (like bash's set -o pipefail).
  pipefail: false

ssh:
  # known_hosts: ~/.ssh/known_hosts   # host keys are checked strictly against it (REMUX_KNOWN_HOSTS overrides)
  connect_timeout_seconds: 10
  keepalive_interval_seconds: 15
  max_channels: 10                   # concurrent commands per connection (sshd's MaxSessions is 10)
  breaker:                           # per host: open after N consecutive failures, probe after the cool-down
    failure_threshold: 3
    cooldown_seconds: 10
  backoff:                           # reconnect delays: exponential with full jitter
    base_ms: 500
    cap_ms: 30000

daemon:
  # socket: ~/.config/remux/run/remux.sock   # REMUX_SOCKET overrides
  rate_limit:                        # per principal, token bucket
    requests_per_second: 50
    burst: 100
  running_limit:                     # commands running at once (each host of a fan-out counts one)
    per_principal: 64
    total: 512

fanout:
  concurrency: 32                    # hosts worked on at once

sessions:
  sweep_interval_seconds: 60         # the daemon refreshes its cache of tmux sessions this often
  attach_lifetime_seconds: 21600     # an attach is closed (its tmux client ends) after this long
  record: attaches                   # in $REMUX_HOME/recordings: attaches (browser and CLI attaches), sessions (each session remux creates, whole), none
  recordings_max_total_mb: 10240     # the daemon removes the oldest recordings beyond this (null: no limit)
  # recordings_keep_days: 90         # and those older than this (default: kept until the size limit needs room)
http:                                # the daemon's web console and API (served only once a principal exists)
  listen: 127.0.0.1:7777             # --listen overrides
  # tls_cert: /etc/remux/cert.pem    # with tls_key; default: one remux makes, in $REMUX_HOME/tls
  # tls_key: /etc/remux/key.pem
  # origins: [https://remux.example.com:7777]   # browser origins allowed besides the daemon's own
  session_hours: 12                  # lifetime of a browser login
  trusted_proxies: []                # proxies whose X-Forwarded-For entry is the client's address (lockouts, audit)
  request_timeout_seconds: 120       # a request must arrive whole within this (answers and WebSockets are not cut)

notify:                              # where remux tells a person something needs them (remux notify test)
  # base_url: https://remux.example.com:7777   # links in messages; default: the console's own URL
  channels: []
  # - { type: ntfy, topic: remux-CHANGE-ME, token: "\${NTFY_TOKEN}" }   # url: https://ntfy.sh by default
  # - { type: pushover, token: "\${PUSHOVER_APP_TOKEN}", user: "\${PUSHOVER_USER_KEY}" }
  # - { type: slack, webhook_url: "\${SLACK_WEBHOOK_URL}" }
  # - { type: discord, webhook_url: "\${DISCORD_WEBHOOK_URL}" }
  # - { type: webhook, url: https://hooks.example.com/remux, secret: "\${WEBHOOK_SECRET}" }
  # each also takes name, min_priority (low|normal|high) and allow_internal (send to private addresses)
  flood: { burst: 10, per_minute: 10, overall_burst: 30, overall_per_minute: 30 }   # per asker (an agent session) and in all; beyond: held, then one "N more" message

approvals:
  timeout_seconds: 300               # a policy \`ask\` waits this long for an answer; none is a denial
  orphan_sweep_seconds: 30           # the daemon withdraws questions whose asker was killed this often
relay:                               # outbound agents (remux agent) connecting to the daemon
  allow_networks: []                 # e.g. [100.64.0.0/10]; empty: any network
  trusted_proxies: []                # proxies whose X-Forwarded-For entry is believed
  ping_interval_seconds: 2           # a dead agent (no FIN: a cut network, a frozen process) is down
  pong_timeout_seconds: 3            # within these two together
  request_timeout_seconds: 30

agents:                              # remux code start: AI coding agents in sandboxed tmux sessions
  default_agent: claude              # claude | codex | gemini | aider | a command line
  default_sandbox: srt               # srt (bubblewrap + domain allowlist) | docker | none
  network: {}                        # per agent, replaces its default list (claude: api.anthropic.com, ...)
  # network: { claude: [api.anthropic.com, statsig.anthropic.com], custom: [registry.npmjs.org] }
  extra_domains: []                  # every agent may also reach these
  deny_read: []                      # never readable inside (~/.ssh, ~/.gnupg, ~/.aws always are denied)
  credentials: []                    # readable, never writable inside, e.g. [~/.config/gh]
  pass_env: []                       # srt: variables the agent also gets (it gets PATH, HOME, LANG, TERM, … and its own keys)
  docker:                            # --sandbox docker
    image: node:20-bookworm-slim
    memory: 4g
    pids_limit: 512
`;
}
