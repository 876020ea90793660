// An audit action as scripts see it: `remux audit ls --json` and the HTTP API's GET /api/audit.
import type { AuditAction, AuditApproval } from './types.js';

/** An ask's answer in words, as refusals and `audit ls` say it: "refused by ops-admin via web", "expired". */
export function approvalWords(a: AuditApproval): string {
  return `${a.outcome}${a.by !== null ? ` by ${answererWords(a.by, a.via)}` : a.via !== null ? ` via ${a.via}` : ''}`;
}

/** Who answered and through what: "boss via web". An answer through a decision link is by "link (sent to ntfy)": "via link" after it would say it twice. */
export function answererWords(by: string, via: string | null): string {
  return via === null || by === via || by.startsWith(`${via} `) ? by : `${by} via ${via}`;
}

/** Whether `text` is an action id as `audit ls` and the API show them (its begin row's seq): a whole number from 1. */
export function isActionId(text: string): boolean {
  return /^[1-9][0-9]{0,14}$/.test(text);
}

export function actionJson(a: AuditAction): Record<string, unknown> {
  return {
    id: a.id,
    status: a.status,
    level: a.level,
    time: a.begin.ts,
    principal: a.begin.principal,
    host: a.begin.host,
    operation: a.begin.operation,
    resource: a.begin.resource,
    command: a.begin.command,
    argv: a.begin.argv,
    policy: a.begin.policy,
    rule: a.begin.rule,
    decision: a.begin.decision,
    reason: a.begin.reason,
    // How an ask was answered (written when the action ended): who, through what, which approval.
    approval: a.end?.approval ?? null,
    recording: a.begin.recording,
    exitCode: a.end?.exitCode ?? null,
    signal: a.end?.signal ?? null,
    durationMs: a.end?.durationMs ?? null,
    bytesOut: a.end?.bytesOut ?? null,
    truncated: a.end?.truncated ?? false,
    timedOut: a.end?.timedOut ?? false,
    error: a.end?.error ?? a.end?.refusal ?? null,
  };
}
