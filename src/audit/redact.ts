// Secret redaction for what the audit store keeps (argv, command strings, reasons, errors).
// Pure functions: no I/O, no configuration, so the exec layer can reuse them on output.
//
// Two strengths of name matching, because a false positive costs different amounts:
// - `NAME=value` (env assignments, query parameters) only ever hides the attached value, so a broad
//   name test is used (/PASS|SECRET|TOKEN|KEY|CREDENTIAL/i).
// - `--flag value` hides the *next* argument; after a boolean flag that would be an operand, so only
//   flag names that end in a secret word count (`--db-password`, `--api-key`, not `--token-file`,
//   not `--no-password`).
// `-p` is a password only for the tools listed in TOOLS; elsewhere it is a port, a path, a pid.

export const REDACTED = '[REDACTED]';

const SECRET_NAME = /PASS|SECRET|TOKEN|KEY|CREDENTIAL/i;
const SECRET_FLAG =
  /^(?:.*(?:password|passwd|passphrase|secret|secrets|token|apikey|accesskey|secretkey|privatekey|credential|credentials)|pass|pw|passin|passout|keypass|storepass)$/;

function isSecretFlag(flag: string): boolean {
  const name = flag.replace(/^-+/, '');
  if (/^no[-_]/i.test(name)) return false;
  return SECRET_FLAG.test(name.replace(/[-_]/g, '').toLowerCase());
}

type Pending = 'all' | 'userinfo' | null;

interface ToolRule {
  /** Short flags whose value follows as the next argument or attached (`-a pw`, `-apw`). */
  short?: readonly string[];
  /** Short flags whose value counts only when attached: mysql's `-p db` prompts and names a database. */
  attachedOnly?: readonly string[];
  /** Flags taking `user:password`: only the part after the first colon is hidden. */
  userinfo?: readonly string[];
}

const MYSQL: ToolRule = { attachedOnly: ['p'] };
const TOOLS: Record<string, ToolRule> = {
  mysql: MYSQL,
  mysqldump: MYSQL,
  mysqladmin: MYSQL,
  mysqlimport: MYSQL,
  mysqlshow: MYSQL,
  mysqlcheck: MYSQL,
  mariadb: MYSQL,
  'mariadb-dump': MYSQL,
  sshpass: { short: ['p'] },
  'redis-cli': { short: ['a'] },
  curl: { userinfo: ['-u', '-U', '--user', '--proxy-user'] },
};

interface ScanState {
  tool: ToolRule | null;
  pending: Pending;
}

/** What to keep of a secret-bearing word; the rest becomes REDACTED. */
type Verdict = { keep: string } | null;

function userinfoVerdict(value: string, prefix: string): Verdict {
  const colon = value.indexOf(':');
  return colon < 0 ? null : { keep: prefix + value.slice(0, colon + 1) };
}

/** Decide about one word given the words before it (state is updated). */
function scanWord(word: string, state: ScanState): Verdict {
  const pending = state.pending;
  state.pending = null;
  if (pending === 'all') return { keep: '' };
  if (pending === 'userinfo') return userinfoVerdict(word, '');

  const base = word.slice(word.lastIndexOf('/') + 1);
  const tool = Object.hasOwn(TOOLS, base) ? TOOLS[base] : undefined;
  if (tool) {
    state.tool = tool;
    return null;
  }

  // First: `-psecret` or `-pse=cret` would otherwise read as a flag named "psecret" or "pse".
  const attached = /^-([A-Za-z])([\s\S]+)$/.exec(word);
  if (attached?.[1] !== undefined && attached[2] !== undefined && state.tool) {
    const [, letter, rest] = attached;
    if (state.tool.short?.includes(letter) || state.tool.attachedOnly?.includes(letter)) return { keep: `-${letter}` };
    if (state.tool.userinfo?.includes(`-${letter}`)) return userinfoVerdict(rest, `-${letter}`);
  }

  const withValue = /^(-{1,2}[A-Za-z][\w.-]*)=/.exec(word);
  if (withValue?.[1] !== undefined) {
    const flag = withValue[1];
    if (state.tool?.userinfo?.includes(flag)) return userinfoVerdict(word.slice(flag.length + 1), `${flag}=`);
    return isSecretFlag(flag) ? { keep: `${flag}=` } : null;
  }

  if (/^-{1,2}[A-Za-z][\w.-]*$/.test(word)) {
    const letter = /^-([A-Za-z])$/.exec(word)?.[1];
    if (state.tool?.userinfo?.includes(word)) state.pending = 'userinfo';
    else if (letter !== undefined && state.tool?.short?.includes(letter)) state.pending = 'all';
    else if (isSecretFlag(word)) state.pending = 'all';
    return null;
  }

  const assignment = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(word);
  if (assignment?.[1] !== undefined && SECRET_NAME.test(assignment[1])) return { keep: `${assignment[1]}=` };
  return null;
}

interface Word {
  start: number;
  end: number;
  /** The word with shell quoting removed. */
  value: string;
}

/** Whitespace (as `\s` counts it), and a run of characters that are neither whitespace, a quote nor a backslash. */
const SPACES = /\s+/y;
const PLAIN = /[^\s'"\\]+/y;

/**
 * Shell-like words: whitespace-separated, quotes and backslashes grouping. Lenient: never throws. Every
 * audited string passes here (several per call): plain runs are taken whole, not a character at a time.
 */
function words(s: string): Word[] {
  const out: Word[] = [];
  const n = s.length;
  let i = 0;
  for (;;) {
    SPACES.lastIndex = i;
    if (SPACES.test(s)) i = SPACES.lastIndex;
    if (i >= n) break;
    const start = i;
    let value = '';
    while (i < n) {
      PLAIN.lastIndex = i;
      if (PLAIN.test(s)) {
        value += s.slice(i, PLAIN.lastIndex);
        i = PLAIN.lastIndex;
        continue;
      }
      const c = s[i] as string;
      if (c === "'") {
        const close = s.indexOf("'", i + 1);
        const j = close < 0 ? n : close;
        value += s.slice(i + 1, j);
        i = Math.min(n, j + 1);
      } else if (c === '"') {
        i++;
        while (i < n && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < n) i++;
          value += s[i];
          i++;
        }
        i = Math.min(n, i + 1);
      } else if (c === '\\' && i + 1 < n) {
        value += s[i + 1];
        i += 2;
      } else if (c === '\\') {
        // A backslash that ends the string stands for itself.
        value += c;
        i++;
      } else break; // whitespace: the word ends
    }
    out.push({ start, end: i, value });
  }
  return out;
}

function redactWords(s: string): string {
  const state: ScanState = { tool: null, pending: null };
  let out = '';
  let at = 0;
  for (const w of words(s)) {
    const verdict = scanWord(w.value, state);
    // Already redacted (`"password=[REDACTED]"`): left as it is, so that redacting twice changes nothing.
    if (!verdict || w.value === verdict.keep + REDACTED) continue;
    const raw = s.slice(w.start, w.end);
    // Keep the visible prefix only when it is written unquoted; otherwise hide the whole word.
    out += s.slice(at, w.start) + (raw.startsWith(verdict.keep) ? verdict.keep : '') + REDACTED;
    at = w.end;
  }
  return out + s.slice(at);
}

const PRIVATE_KEY_BLOCK = /-----BEGIN ([A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----[\s\S]*?(?:-----END \1-----|$)/g;
const SECRET_HEADER =
  /(?<![\w-])((?:proxy-)?authorization|cookie|set-cookie|private-token|api-key|x-[\w-]*(?:token|key|secret|auth)[\w-]*)(\s*:\s*)(?:(basic|bearer|token|digest|negotiate|ntlm|aws4-hmac-sha256)\s+)?[^\s'"](?:[^\r\n'"]*[^\s'"])?/gi;
// Lookbehinds rather than \b: a match may then start only where a run starts, which keeps long inputs linear.
const URL_PASSWORD = /(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*:\/\/[^\s/:@'"]*):[^\s/'"]*@/gi;
const INLINE_ASSIGNMENT = /(?<![\w.-])([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'[^']*'|[^\s&;'"]+)/g;
/**
 * `name: value` as YAML, JSON and config files write it (`password: x`, `"api_key": "x"`), in a command's
 * JSON body or a file's text quoted in an approval. Only names that end in a secret word, as for flags
 * (`ssh-keygen: …` or `monkey: …` are not secrets); the value is one word or one quoted string.
 */
const KEY_VALUE = /(?<![\w.-])(["']?)([A-Za-z_][\w.-]*)\1([ \t]*:[ \t]*)("[^"\r\n]*"|'[^'\r\n]*'|[^\s,;}'"]+)/g;
const SECRET_KEY_NAME = /(?:password|passwd|passphrase|secret|secrets|token|apikey|accesskey|secretkey|privatekey|credential|credentials)$/;
/** Credentials with a recognisable shape, wherever they appear. */
const KNOWN_TOKENS = [
  /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, // AWS access key id
  /\bgh[pousr]_[A-Za-z0-9]{36,}\b/g, // GitHub
  /\bgithub_pat_[A-Za-z0-9_]{22,}\b/g,
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/g, // Slack
  /\bsk-(?:ant-)?[A-Za-z0-9_-]{20,}/g, // OpenAI, Anthropic
  /\b[rs]k_live_[A-Za-z0-9]{16,}/g, // Stripe
  /\bAIza[0-9A-Za-z_-]{35}\b/g, // Google API key
  /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, // JWT
];

/** Redact secrets in free text: a command string, a message, command output. */
export function redactText(s: string): string {
  let out = s
    .replace(PRIVATE_KEY_BLOCK, `-----BEGIN $1-----${REDACTED}-----END $1-----`)
    .replace(SECRET_HEADER, (_m, name: string, sep: string, scheme: string | undefined) =>
      `${name}${sep}${scheme === undefined ? '' : `${scheme} `}${REDACTED}`,
    );
  out = redactWords(out)
    .replace(URL_PASSWORD, `$1:${REDACTED}@`)
    .replace(INLINE_ASSIGNMENT, (m, name: string) => (SECRET_NAME.test(name) ? `${name}=${REDACTED}` : m))
    .replace(KEY_VALUE, (m, quote: string, name: string, sep: string, value: string) => {
      if (!SECRET_KEY_NAME.test(name.replace(/[-_.]/g, '').toLowerCase()) || value === REDACTED) return m;
      const q = value[0] === '"' || value[0] === "'" ? value[0] : '';
      return `${quote}${name}${quote}${sep}${q}${REDACTED}${q}`;
    });
  for (const re of KNOWN_TOKENS) out = out.replace(re, REDACTED);
  return out;
}

/** Redact secrets in an argv, where each element is exactly one argument (values may contain spaces). */
export function redactArgv(argv: readonly string[]): string[] {
  const state: ScanState = { tool: null, pending: null };
  return argv.map((arg) => {
    const verdict = scanWord(arg, state);
    // Elements are also scanned as text: `sh -c "curl --token X"` carries a whole command line.
    return verdict ? verdict.keep + REDACTED : redactText(arg);
  });
}
