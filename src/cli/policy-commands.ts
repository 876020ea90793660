// Implementations of `remux policy …`.
import { realpathSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseCommand } from '../command/parser.js';
import { loadConfig } from '../config/config.js';
import { policiesFile } from '../config/paths.js';
import { EXIT } from '../core/exit-codes.js';
import { evaluate, explain } from '../policy/evaluate.js';
import { loadPolicyFile } from '../policy/load.js';
import { addPolicyToFile, policyNameProblem, TEMPLATES, workspaceResource } from '../policy/templates.js';
import type { OutputLimits, Policy, Rule, SandboxMode } from '../policy/types.js';
import { enforcementOn, sandboxOn } from '../core/perform.js';
import { createLocalHost } from '../hosts/local.js';
import { directoryProblem } from '../exec/local.js';
import { policyWarnings } from '../policy/warnings.js';
import { loadPolicies } from './context.js';
import { printJson, printTable, UsageError } from './output.js';

/** Patterns as written in the file: `(?i)` again for a case-insensitive one. */
const patternText = (re: RegExp): string => (re.flags.includes('i') ? `(?i)${re.source}` : re.source);

function outputView(output: OutputLimits): Record<string, unknown> {
  return {
    max_bytes: output.maxBytes,
    redact: output.redact.map(patternText),
    redact_blocks: output.redactBlocks.map((b) => ({ from: patternText(b.from), to: patternText(b.to) })),
  };
}

function ruleView(rule: Rule): Record<string, unknown> {
  return {
    index: rule.index,
    effect: rule.effect,
    operation: rule.operation,
    resources: rule.resources,
    ...(rule.output ? { output: outputView(rule.output) } : {}),
    ...(rule.reason ? { reason: rule.reason } : {}),
    ...(rule.sandbox === false ? { sandbox: false } : {}),
    ...(rule.unsandboxed === true ? { unsandboxed: true } : {}),
    source: `${rule.source.file}:${rule.source.line}`,
  };
}

function policyView(policy: Policy): Record<string, unknown> {
  return {
    name: policy.name,
    description: policy.description ?? null,
    sandbox: policy.sandbox,
    source: `${policy.source.file}:${policy.source.line}`,
    rules: policy.rules.map(ruleView),
  };
}

export function listPolicies(opts: { json?: boolean }): void {
  const policies = [...loadPolicies().values()];
  if (opts.json) return printJson(policies.map(policyView));
  printTable(
    ['NAME', 'RULES', 'SANDBOX', 'DESCRIPTION'],
    policies.map((p) => [p.name, p.rules.length, p.sandbox, p.description ?? '']),
  );
}

function findPolicy(name: string): Policy {
  const policies = loadPolicies();
  const policy = policies.get(name);
  if (!policy) {
    throw new UsageError(`no policy named "${name}" in ${policiesFile()}`, `known policies: ${[...policies.keys()].join(', ') || 'none'}`);
  }
  return policy;
}

export function showPolicy(name: string, opts: { json?: boolean }): void {
  const policy = findPolicy(name);
  if (opts.json) return printJson(policyView(policy));
  process.stdout.write(`${policy.name}${policy.description ? ` — ${policy.description}` : ''}\n`);
  process.stdout.write(`source: ${policy.source.file}:${policy.source.line}   sandbox: ${SANDBOX_MODES[policy.sandbox]}\n\n`);
  for (const r of policy.rules) {
    const where = `${r.sandbox === false ? '  sandbox: false' : ''}${r.unsandboxed === true ? '  unsandboxed: true' : ''}`;
    process.stdout.write(`#${r.index}  ${r.effect.padEnd(5)}  ${r.operation}  (line ${r.source.line})${where}${r.reason ? ` — ${r.reason}` : ''}\n`);
    for (const line of wrapWords(resourceWords(r), 76)) process.stdout.write(`      ${line}\n`);
  }
}

function resourceWords(rule: Rule): string[] {
  if (rule.output) {
    return [
      `max_bytes=${rule.output.maxBytes ?? 'none'}`,
      ...rule.output.redactBlocks.map((b) => `redact-block=/${patternText(b.from)}/…/${patternText(b.to)}/`),
      ...rule.output.redact.map((r) => `redact=/${patternText(r)}/`),
    ];
  }
  return rule.resources === null ? ['(any output)'] : rule.resources;
}

/** Greedy word wrap; a word longer than the width gets a line of its own. */
function wrapWords(words: string[], width: number): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of words) {
    if (current !== '' && current.length + 1 + word.length > width) {
      lines.push(current);
      current = word;
    } else {
      current = current === '' ? word : `${current} ${word}`;
    }
  }
  if (current !== '') lines.push(current);
  return lines;
}

export function validatePolicyFile(file: string, opts: { json?: boolean }): void {
  const policies = loadPolicyFile(resolve(file));
  const names = [...policies.keys()];
  // Valid all the same (exit 0): what they say of this machine may differ on another.
  const warnings = policyWarnings(policies);
  if (opts.json) return printJson({ ok: true, file: resolve(file), policies: names, warnings });
  process.stdout.write(`ok: ${resolve(file)}: ${names.length} ${names.length === 1 ? 'policy' : 'policies'} (${names.join(', ')})\n`);
  for (const w of warnings) process.stderr.write(`${w.file}:${w.line}: warning: ${w.message}\n`);
}

export function createPolicy(name: string, opts: { template: string; output?: string; workspace?: string }): void {
  if (!(opts.template in TEMPLATES)) {
    throw new UsageError(`unknown template "${opts.template}"`, `templates: ${Object.keys(TEMPLATES).join(', ')}`);
  }
  const template = opts.template as keyof typeof TEMPLATES;
  const nameProblem = policyNameProblem(name);
  if (nameProblem !== null) throw new UsageError(nameProblem);
  if (opts.workspace !== undefined && template !== 'developer') throw new UsageError(`--workspace goes with --template developer, not ${template}`);
  const file = opts.output ? resolve(opts.output) : policiesFile();
  // Rules match paths with their symlinks resolved: the workspace is written as the directory it really is.
  const workspace = opts.workspace === undefined ? {} : { workspace: realDirectory(opts.workspace) };
  addPolicyToFile(file, name, template, workspace);
  process.stdout.write(`added policy ${name} (template ${opts.template}${workspace.workspace ? `, workspace ${workspace.workspace}` : ''}) to ${file}\n`);
}

function realDirectory(dir: string): string {
  let real: string;
  try {
    real = realpathSync(resolve(dir));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`--workspace ${dir}: ${code === 'ENOENT' ? 'no such directory' : code ?? String(e)}`, code === 'ENOENT' ? `create it first: mkdir -p ${dir}` : undefined);
  }
  if (!statSync(real).isDirectory()) throw new UsageError(`--workspace ${dir}: not a directory`);
  try {
    workspaceResource(real);
  } catch (e) {
    throw new UsageError(`--workspace: ${(e as Error).message}`);
  }
  return real;
}

const SANDBOX_MODES: Record<SandboxMode, string> = {
  on: 'on (the OS sandbox wherever the host has one)',
  required: 'required (hosts without the OS sandbox are refused)',
  off: 'off (static checks only)',
};

/** What `policy NAME` decides for a command on this host, including how it would be enforced here. */
export async function checkPolicy(name: string, command: string, opts: { cwd?: string; json?: boolean }): Promise<void> {
  const policy = findPolicy(name);
  const { config } = loadConfig();
  const list = parseCommand(command);
  const host = createLocalHost('localhost', config.exec.secure_path, config.daemon.socket);
  const enforcement = await enforcementOn(policy, host);
  if ('refusal' in enforcement) {
    process.exitCode = EXIT.DENIED;
    if (opts.json) return printJson({ effect: 'deny', policy: policy.name, reason: enforcement.refusal, rule: null, sandbox: null });
    process.stdout.write(`DENY under policy ${policy.name}: ${enforcement.refusal}\n`);
    return;
  }
  // Where a run here would start: relative paths are checked from there (`/` of a sandbox that does not show the caller's directory).
  const sandbox = enforcement.sandbox ? sandboxOn(policy, 'policy-check', host) : null;
  const cwd = opts.cwd !== undefined ? resolve(opts.cwd) : host.defaultCwd(process.cwd(), sandbox);
  const decision = evaluate(policy, list, { cwd, resolver: host.resolver, enforcement });
  process.exitCode = decision.effect === 'allow' ? EXIT.OK : EXIT.DENIED;
  const cwdProblem = directoryProblem(decision.cwd);
  const staticOnly = enforcement.sandbox ? null : enforcement.why;
  if (opts.json) {
    return printJson({
      enforcement: enforcement.sandbox ? 'sandbox' : 'static checks only',
      ...(staticOnly ? { static_only_because: staticOnly } : {}),
      effect: decision.effect,
      policy: decision.policy,
      reason: decision.reason,
      rule: decision.rule,
      sandbox: decision.sandbox,
      cwd: decision.cwd,
      ...(cwdProblem ? { cwd_problem: cwdProblem } : {}),
      output: outputView(decision.output),
      stages: list.items.flatMap((i) => i.pipeline.stages.map((s) => s.argv)),
      checks: decision.checks,
      // Which layer bounds each stage that runs (leading cds do not): static checks, the sandbox, or both.
      bounds: decision.bounds,
    });
  }
  for (const line of explain(decision, cwdProblem)) process.stdout.write(`${line}\n`);
  if (staticOnly) process.stdout.write(`  static checks only: ${staticOnly}\n`);
}
