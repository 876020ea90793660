// The policy file format, validated with zod. Errors name the key path; validate() adds file:line.
//
//   policies:
//     NAME:                                  # ^[A-Za-z0-9_.-]{1,64}$
//       description: text                    # optional
//       sandbox: true                        # default; false = static checks only; required = refuse hosts without one
//       capabilities:
//         - operation: execute_binary        # see KNOWN_OPERATIONS
//           resource: cat|grep|/opt/tools/*  # string (a|b alternatives), list of strings, or null
//           effect: allow                    # allow (default) | deny | ask
//           reason: text                     # optional, echoed in decisions
//           sandbox: false                   # optional, allow/ask only: run these programs outside the OS sandbox
//         - operation: execute_code          # programs that run code remux cannot check (make, npm, python3…)
//           resource: make|npm               # like execute_binary; the command then runs in the OS sandbox
//           unsandboxed: true                # optional: may also run where there is no sandbox
//         - operation: write_stdout          # resource: null (no limits) or
//           resource: { max_bytes: N, redact: [REGEX, { from: REGEX, to: REGEX }] }
import { z } from 'zod';
import { strictObject } from '../config/source.js';
import { globError } from './glob.js';
import type { Operation, OutputLimits, Rule, SandboxMode } from './types.js';

export const KNOWN_OPERATIONS = ['execute_binary', 'execute_code', 'read_file', 'write_file', 'list_directory', 'write_stdout'] as const;
const PATH_OPERATIONS = ['read_file', 'write_file', 'list_directory'] as const;
export type PathOperation = (typeof PATH_OPERATIONS)[number];

/** Reserved for later issues: accepted in files, not yet checked by evaluate(). */
const FUTURE_OPERATION = /^(?:network|(?:session|mcp)\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)$/;

export const POLICY_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** In execute_binary: any program found in the secure PATH. */
export const ANY_PROGRAM = '*';

export function isOperation(name: string): name is Operation {
  return (KNOWN_OPERATIONS as readonly string[]).includes(name) || FUTURE_OPERATION.test(name);
}

function isPathOperation(op: string): op is PathOperation {
  return (PATH_OPERATIONS as readonly string[]).includes(op);
}

/**
 * A redaction pattern: a JavaScript regex, optionally prefixed `(?i)` for case-insensitive matching.
 * Also each end of a `{ from, to }` redaction block.
 */
export function compileRedaction(source: string): RegExp {
  const insensitive = source.startsWith('(?i)');
  const re = new RegExp(insensitive ? source.slice(4) : source, insensitive ? 'gi' : 'g');
  // A pattern matching "" would splice the replacement between every character of the output.
  if (new RegExp(re.source, re.flags.replace('g', '')).test('')) throw new Error('matches the empty string');
  return re;
}

/** What a capability entry becomes once validated; load.ts adds its index and source line. */
export type RuleSpec = Omit<Rule, 'index' | 'source'>;

// A redact entry is a regex string or a { from, to } block; entries are checked one by one in outputLimits().
const OutputSchema = strictObject({
  max_bytes: z.number().int().positive().optional(),
  redact: z.array(z.unknown()).optional(),
});

const RedactBlockSchema = strictObject({
  from: z.string(),
  to: z.string(),
});

type Ctx = z.core.$RefinementCtx;
type Path = Array<string | number>;

const CapabilitySchema = strictObject({
  operation: z.string().refine(isOperation, {
    error: (iss) =>
      `unknown operation ${JSON.stringify(iss.input)} (known: ${[...KNOWN_OPERATIONS, 'network', 'session.<name>', 'mcp.<name>'].join(', ')})`,
  }),
  resource: z.unknown().optional(),
  effect: z.enum(['allow', 'deny', 'ask']).default('allow'),
  reason: z.string().min(1).optional(),
  // YAML's yes/no are strings here, as for sandbox:.
  unsandboxed: z.boolean({ error: 'expected true or false' }).optional(),
  sandbox: z.boolean({ error: 'expected true or false' }).optional(),
}).transform((cap, ctx): RuleSpec => {
  const op = cap.operation as Operation;
  const spec: RuleSpec = { operation: op, effect: cap.effect, resources: null };
  if (cap.reason !== undefined) spec.reason = cap.reason;
  if (cap.unsandboxed !== undefined) {
    if (op !== 'execute_code') issue(ctx, ['unsandboxed'], `only execute_code rules take unsandboxed (this is ${op})`);
    else if (cap.effect === 'deny') issue(ctx, ['unsandboxed'], 'a deny rule runs nothing: unsandboxed has no meaning here');
    else spec.unsandboxed = cap.unsandboxed;
  }
  if (cap.sandbox !== undefined) {
    // Code remux cannot check is bounded by the sandbox alone: no rule lets it out (see unsandboxed).
    if (op === 'execute_code') issue(ctx, ['sandbox'], 'code remux cannot check never leaves the OS sandbox: sandbox is for execute_binary rules (unsandboxed: true is for hosts without a sandbox)');
    else if (op !== 'execute_binary') issue(ctx, ['sandbox'], `only execute_binary rules take sandbox (this is ${op})`);
    else if (cap.effect === 'deny') issue(ctx, ['sandbox'], 'a deny rule runs nothing: sandbox has no meaning here');
    else spec.sandbox = cap.sandbox;
  }
  if (op === 'write_stdout') {
    spec.output = outputLimits(cap.resource, ctx);
    return spec;
  }
  const programs = op === 'execute_binary' || op === 'execute_code';
  const nullable = !(programs || isPathOperation(op));
  if (cap.resource === undefined || (cap.resource === null && nullable)) {
    if (!nullable) issue(ctx, ['resource'], `missing: ${op} needs the ${programs ? 'programs' : 'path globs'} it covers`);
    return spec;
  }
  spec.resources = entries(cap.resource, ctx);
  spec.resources.forEach((entry, i) => {
    const at: Path = Array.isArray(cap.resource) ? ['resource', i] : ['resource'];
    const problem = programs ? programError(entry) : isPathOperation(op) ? pathError(entry) : null;
    if (problem) issue(ctx, at, `${JSON.stringify(entry)}: ${problem}`);
  });
  return spec;
});

function issue(ctx: Ctx, path: Path, message: string): void {
  ctx.addIssue({ code: 'custom', path, message });
}

/** A string with `a|b|c` alternatives, or a list of strings; blanks around entries are ignored. */
function entries(resource: unknown, ctx: Ctx): string[] {
  const list = typeof resource === 'string' ? [resource] : resource;
  if (!Array.isArray(list) || list.length === 0 || !list.every((r) => typeof r === 'string')) {
    issue(ctx, ['resource'], 'expected a string (a|b alternatives) or a non-empty list of strings');
    return [];
  }
  const out: string[] = [];
  list.forEach((item: string, i) => {
    for (const entry of item.split('|').map((s) => s.trim())) {
      if (entry === '') issue(ctx, typeof resource === 'string' ? ['resource'] : ['resource', i], 'empty entry');
      else out.push(entry);
    }
  });
  return out;
}

function pathError(entry: string): string | null {
  const problem = globError(entry);
  if (problem === null) return null;
  // A shell's way to start from a directory: ~ and $VAR stay literal here, only ${VAR} is expanded.
  const start = /^(~|\$([A-Za-z_]\w*))(?=\/|$)/.exec(entry);
  const hint = start ? `; ${start[1]} is not expanded in policies: write \${${start[2] ?? 'HOME'}}${entry.slice(start[1]!.length)}` : '';
  return `not a valid path glob: ${problem}${hint}`;
}

function programError(entry: string): string | null {
  if (entry.includes('/')) return pathError(entry);
  if (entry === ANY_PROGRAM) return null;
  // Only * and ? read as wildcards: `[` is a real program (test), and braces are just characters here.
  if (/[*?]/.test(entry)) return `a program name cannot be a glob; use ${ANY_PROGRAM} alone (any program in the secure PATH) or an absolute path glob`;
  if (/[\s\0]/.test(entry) || entry === '.' || entry === '..') return 'not a valid program name';
  return null;
}

function outputLimits(resource: unknown, ctx: Ctx): OutputLimits {
  const limits: OutputLimits = { maxBytes: null, redact: [], redactBlocks: [] };
  if (resource === null || resource === undefined) return limits;
  const parsed = OutputSchema.safeParse(resource);
  if (!parsed.success) {
    for (const iss of parsed.error.issues) ctx.addIssue({ ...iss, path: ['resource', ...iss.path] } as z.core.$ZodRawIssue);
    return limits;
  }
  limits.maxBytes = parsed.data.max_bytes ?? null;
  parsed.data.redact?.forEach((entry, i) => {
    const at: Path = ['resource', 'redact', i];
    const compile = (source: string, path: Path): RegExp | null => {
      try {
        return compileRedaction(source);
      } catch (err) {
        issue(ctx, path, `invalid redaction pattern ${JSON.stringify(source)}: ${(err as Error).message}`);
        return null;
      }
    };
    if (typeof entry === 'string') {
      const re = compile(entry, at);
      if (re) limits.redact.push(re);
      return;
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      issue(ctx, at, 'expected a regex string or a { from: REGEX, to: REGEX } block');
      return;
    }
    const block = RedactBlockSchema.safeParse(entry);
    if (!block.success) {
      for (const iss of block.error.issues) ctx.addIssue({ ...iss, path: [...at, ...iss.path] } as z.core.$ZodRawIssue);
      return;
    }
    const from = compile(block.data.from, [...at, 'from']);
    const to = compile(block.data.to, [...at, 'to']);
    if (from && to) limits.redactBlocks.push({ from, to });
  });
  return limits;
}

const PolicySchema = strictObject({
  description: z.string().optional(),
  // true (the default) and false; `required` refuses hosts without a sandbox. YAML's yes/no are strings here.
  sandbox: z
    .union([z.boolean(), z.literal('required')], { error: 'expected true, false or required' })
    .default(true)
    .transform((v): SandboxMode => (v === 'required' ? 'required' : v ? 'on' : 'off')),
  capabilities: z.array(CapabilitySchema),
});

export const PolicyFileSchema = strictObject({
  policies: z.record(
    z.string().regex(POLICY_NAME, { error: 'policy names are 1-64 characters of A-Z a-z 0-9 _ . -' }),
    PolicySchema,
  ),
});
