// Implementations of `remux audit …`. The local user owns the store and reads all of it; with REMUX_TOKEN,
// its principal reads what GET /api/audit shows it (auditFilterFor, the API's own filter).
import { actionJson, approvalWords, isActionId } from '../audit/json.js';
import type { AuditAction, AuditFilter, AuditLevel, ChainHead } from '../audit/types.js';
import { AUDIT_LEVELS } from '../audit/types.js';
import { auditDbFile } from '../config/paths.js';
import { ScopeError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { auditFilterFor, auditOutOfScope } from '../core/scope.js';
import type { LsOptions } from './commands/audit.js';
import { openAudit, tokenReader } from './context.js';
import { type Cell, cellText, limitOption, printJson, printJsonLine, printTable, UsageError, utcCell } from './output.js';

function parseLevel(level: string | undefined): AuditLevel | undefined {
  if (level === undefined) return undefined;
  const lower = level.toLowerCase();
  if (!(AUDIT_LEVELS as readonly string[]).includes(lower)) {
    throw new UsageError(`unknown level "${level}"`, `use one of: ${AUDIT_LEVELS.join(', ')}`);
  }
  return lower as AuditLevel;
}

function row(a: AuditAction): Array<string | number | null> {
  const exit = a.status === 'incomplete' ? 'running?' : (a.end?.exitCode ?? a.end?.signal ?? null);
  const duration = a.end?.durationMs != null ? `${Math.round(a.end.durationMs)}ms` : null;
  // A command is what ran; any other operation is named, with what it acted on (session.send root@web1:build).
  const b = a.begin;
  const what = b.operation === 'exec' ? (b.command ?? 'exec') : [b.operation, b.resource, b.command && `-- ${b.command}`].filter(Boolean).join(' ');
  // A refusal or error says why; an action that ran after an ask says who approved it (a refusal names them already).
  const approval = a.end?.approval;
  const why = a.level === 'deny' || a.level === 'error' ? (a.end?.refusal ?? a.end?.error ?? a.begin.reason ?? '') : approval ? approvalWords(approval) : null;
  const note = why === null ? '' : `  (${why})`;
  return [a.id, utcCell(a.begin.ts, 'ms'), a.level.toUpperCase(), a.begin.principal, a.begin.host, exit, duration, `${what}${note}`];
}

/** `--before ID`: an action id, as the ID column and --json's id show it. */
function parseBefore(before: string | undefined): number | undefined {
  if (before === undefined) return undefined;
  if (!isActionId(before)) throw new UsageError(`--before ${JSON.stringify(before)}: not an action id`, 'give the ID of the oldest action listed before (a whole number, like 1234)');
  return Number(before);
}

/** The filter the reader may use when it asks for `asked`: all of it for the local user and admins; else its own actions, as GET /api/audit gives. */
function scoped(asked: Omit<AuditFilter, 'since'>): AuditFilter {
  const who = tokenReader();
  if (who === null) return asked;
  const filter = auditFilterFor(who.principal, asked, who.principals);
  if (filter === null) throw new ScopeError(auditOutOfScope(who.principal), `leave out --principal to list ${who.principal.name}'s own actions`);
  return filter;
}

const HEADERS = ['ID', 'TIME (UTC)', 'LEVEL', 'PRINCIPAL', 'HOST', 'EXIT', 'TOOK', 'WHAT'];

export async function listAudit(opts: LsOptions): Promise<void> {
  const level = parseLevel(opts.level);
  const limit = limitOption(opts.limit, 50);
  const before = parseBefore(opts.before);
  // Following goes on from the newest action: after an older page, what lies between would be skipped.
  if (before !== undefined && opts.follow) throw new UsageError('--before and --follow do not go together', 'list older pages without --follow');
  const filter = scoped({ ...(level ? { level } : {}), ...(opts.host ? { host: opts.host } : {}), ...(opts.principal ? { principal: opts.principal } : {}) });
  const store = openAudit();
  try {
    const { actions, head, next } = store.snapshot({ ...filter, ...(limit > 0 ? { limit } : {}), ...(before === undefined ? {} : { beforeSeq: before }) });
    if (opts.json) actions.forEach((a) => printJsonLine(actionJson(a)));
    else if (actions.length > 0 || !opts.follow) {
      if (actions.length === 0) {
        // Every filter given, or "no recorded actions" reads as an empty store.
        const given = [
          level ? `at level ${level}` : '',
          opts.host ? `on host ${opts.host}` : '',
          opts.principal ? `by principal ${opts.principal}` : '',
          before === undefined ? '' : `before ${before}`,
        ];
        process.stderr.write(`no recorded actions${given.filter(Boolean).map((g) => ` ${g}`).join('')} in ${auditDbFile()}\n`);
      }
      else printTable(HEADERS, actions.map(row));
      if (next !== null && !opts.follow) process.stdout.write(`${actions.length} actions shown (older ones: --before ${next})\n`);
    }
    if (!opts.follow) return;
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    await store.follow(
      head,
      (a) => {
        if (opts.json) printJsonLine(actionJson(a));
        else process.stdout.write(`${row(a).map(cellText).join('  ')}\n`);
      },
      controller.signal,
      filter,
    );
  } finally {
    store.close();
  }
}

/**
 * `audit show ID`: one action whole, as `audit ls` cuts it to a row. With REMUX_TOKEN, one of its
 * principal's own actions (as GET /api/audit shows them): another's reads as no such action.
 */
export function showAudit(id: string, opts: { json?: boolean }): void {
  if (!isActionId(id)) throw new UsageError(`${JSON.stringify(id)}: not an action id`, 'give an ID as remux audit ls shows it (a whole number, like 1234)');
  const filter = scoped({});
  const store = openAudit();
  let action: AuditAction | undefined;
  try {
    const seq = Number(id);
    action = store.list({ ...filter, sinceSeq: seq - 1, beforeSeq: seq + 1 })[0];
  } finally {
    store.close();
  }
  if (!action) throw new UsageError(`no action ${id} in ${auditDbFile()}`, 'remux audit ls lists the actions and their IDs');
  if (opts.json) return printJson(actionJson(action));
  process.stdout.write(detailText(action));
}

/** Who acted through what: the principal's name says it for the local user (cli:LOGIN) and agents; a token's principal is named only. */
function frontEnd(principal: string): string {
  if (principal.startsWith('cli:')) return 'the command line, as the local user';
  if (principal.startsWith('agent:gateway-')) return 'a remux agent (the gateway on that host)';
  if (principal.startsWith('agent:')) return `an AI agent session (remux code, ${principal.slice('agent:'.length)})`;
  return 'a token (CLI with REMUX_TOKEN, web console, API or MCP)';
}

function detailText(a: AuditAction): string {
  const b = a.begin;
  const e = a.end;
  const ms = (v: number | null | undefined): string | null => (v == null ? null : `${Math.round(v)} ms`);
  const status = a.status === 'incomplete' ? 'incomplete: begun, no end recorded (still running, or remux stopped meanwhile)' : 'complete';
  const fields: Array<[string, Cell]> = [
    ['action', `${a.id} (${status})`],
    ['level', a.level],
    ['time (UTC)', utcCell(b.ts, 'ms')],
    ['principal', b.principal],
    ['through', frontEnd(b.principal)],
    ['host', b.host],
    ['operation', b.operation],
    ['command', b.command],
    ['argv', b.argv === null ? null : JSON.stringify(b.argv)],
    ['resource', b.resource],
    ['policy', b.policy],
    ['decision', b.decision],
    ['rule', b.rule],
    // The decision's reason, and how it was enforced (the OS sandbox, static checks, stages let out).
    ['reason', b.reason],
    ['approval', e?.approval ? `${approvalWords(e.approval)}${e.approval.id ? ` (approval ${e.approval.id})` : ''}` : null],
    ['recording', b.recording],
    ['exit', a.status === 'incomplete' ? null : (e?.exitCode ?? null)],
    ['signal', e?.signal ?? null],
    ['took', ms(e?.durationMs)],
    ['output', e?.bytesOut == null ? null : `${e.bytesOut} bytes${e.bytesErr ? `, ${e.bytesErr} on stderr` : ''}${e.truncated ? ' (truncated)' : ''}`],
    ['timed out', e?.timedOut ? 'yes' : null],
    ['refused', e?.refusal ?? null],
    ['error', e?.error ?? null],
  ];
  const width = Math.max(...fields.map(([k]) => k.length));
  return fields
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k.padEnd(width)}  ${cellText(v)}\n`)
    .join('');
}

/** `--anchor SEQ:HASH`: a head printed by an earlier verify (`head #SEQ HASH`, or --json's head). */
function parseAnchor(anchor: string | undefined): ChainHead | undefined {
  if (anchor === undefined) return undefined;
  const m = /^#?(\d+)[:\s]+([0-9a-f]{64})$/i.exec(anchor.trim());
  if (!m) throw new UsageError(`--anchor ${JSON.stringify(anchor)} is not a chain head`, 'give SEQ:HASH as an earlier `remux audit verify` printed it (head #SEQ HASH), e.g. --anchor 42:9f86d0…');
  return { seq: Number(m[1]), hash: m[2]!.toLowerCase() };
}

export function verifyAudit(opts: { json?: boolean; anchor?: string }): void {
  // Rows removed from the end, or every hash recomputed after an edit, leave a valid chain: only a head
  // kept elsewhere shows them.
  const anchor = parseAnchor(opts.anchor);
  // GET /api/audit has no verify, and a verdict on the whole chain (its length, its head, --anchor's
  // answer about a record) tells of other principals' records: only the local user and admins get one.
  const who = tokenReader();
  if (who !== null && !who.principal.scope.admin) {
    throw new ScopeError(`out of scope for ${who.principal.name}: only admins verify the audit chain, which holds other principals' records`, 'unset REMUX_TOKEN to verify as the local user, or use an admin token');
  }
  const store = openAudit();
  try {
    const result = store.verify(anchor);
    process.exitCode = result.ok ? EXIT.OK : EXIT.FAILURE;
    if (opts.json) return printJson({ file: auditDbFile(), ...result });
    if (result.ok) {
      process.stdout.write(`ok: ${result.checked} records verified in ${auditDbFile()}${anchor ? `, anchor #${anchor.seq} among them` : ''}; head #${result.head.seq} ${result.head.hash}\n`);
    } else {
      process.stderr.write(`remux: audit chain broken at record #${result.firstBad?.seq}: ${result.firstBad?.reason}\n`);
      process.stderr.write(`hint: ${result.checked} records before it verified; keep a copy of ${auditDbFile()} for investigation\n`);
    }
  } finally {
    store.close();
  }
}

export function exportAudit(): void {
  const filter = scoped({});
  const store = openAudit();
  try {
    // A filter names a principal only for a non-admin: its own rows, without the chain's hashes.
    store.exportJsonl((line) => process.stdout.write(`${line}\n`), filter.principal === undefined ? undefined : { principal: filter.principal, ...(filter.since ? { since: filter.since } : {}) });
  } finally {
    store.close();
  }
}
