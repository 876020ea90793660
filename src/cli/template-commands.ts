// `remux template render FILE`: the runtime's Template.render in a local python3 (runtime/index.ts
// renderLocally), so the CLI and the hosts share one implementation of the language.
import { loadConfig } from '../config/config.js';
import { EXIT } from '../core/exit-codes.js';
import { ArgumentError } from '../runtime/errors.js';
import { commandLineVariables, readLocalText } from '../runtime/template-vars.js';
import type { TemplateRenderOptions } from './commands/template.js';
import type { Invocation } from './invocation.js';
import { UsageError } from './output.js';

export async function templateRender(inv: Invocation, file: string, opts: TemplateRenderOptions): Promise<number> {
  const [text, variables] = asUsage(() => [readLocalText(file, inv.cwd), commandLineVariables(opts.var, opts.varsFile, inv.cwd)] as const);
  const runtime = await import('../runtime/index.js');
  let rendered: string;
  try {
    // python3 is looked up in exec.secure_path, as for `remux rpc localhost`.
    const securePath = loadConfig(inv.env).config.exec.secure_path;
    rendered = await runtime.renderLocally(text, variables, { name: file, securePath, ...(opts.python ? { python: opts.python } : {}) });
  } catch (err) {
    const templateError = err instanceof runtime.RemoteError && err.type === 'TemplateError';
    // The host's message is already `FILE:LINE: what`; the RemoteError adds its type in front.
    const message = templateError ? err.message.replace(/^TemplateError: /, '') : err instanceof Error ? err.message : String(err);
    if (opts.json) {
      const at = new RegExp(`^${escapeRegExp(file)}:(\\d+): `).exec(message);
      const error = { type: templateError ? 'TemplateError' : err instanceof Error ? err.name : 'Error', message, file, line: at ? Number(at[1]) : null };
      inv.stdout.write(`${JSON.stringify({ error })}\n`);
    } else inv.stderr.write(`remux: ${message}\n`);
    return templateError ? EXIT.USAGE : EXIT.FAILURE;
  }
  inv.stdout.write(opts.json ? `${JSON.stringify({ text: rendered })}\n` : rendered);
  return EXIT.OK;
}

/** A bad file or variable: a usage error. */
function asUsage<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof ArgumentError) throw new UsageError(err.message);
    throw err;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
