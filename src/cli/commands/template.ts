import type { Command } from 'commander';
import { examples } from '../output.js';
import type { Invocation } from '../invocation.js';

export interface TemplateRenderOptions {
  var: string[];
  varsFile?: string;
  json?: boolean;
  python?: string;
}

/** `remux template render`: the runtime's template language (src/runtime/template.ts), rendered locally. */
export function registerTemplate(program: Command, inv: Invocation): void {
  const template = program
    .command('template')
    .description("the runtime's template language: ${expr}, % if/for … % end, rendered with a safe expression subset")
    .addHelpText('after', examples('remux template render nginx.conf.tmpl --var port=443'));
  template
    .command('render')
    .description('render a template file here, in a local python3 (the same code that renders on hosts), and print it')
    .argument('<file>', 'the template, e.g. nginx.conf.tmpl')
    .option('--var <key=value>', 'a variable, as a string (repeatable; wins over --vars-file)', (v: string, all: string[]) => [...all, v], [])
    .option('--vars-file <file>', 'variables from a YAML or JSON mapping (numbers, lists and maps keep their types)')
    .option('--json', 'print {"text": …}, or {"error": {"type","message","file","line"}}')
    .option('--python <path>', 'the local interpreter (default python3; 3.8 or later)')
    .addHelpText(
      'after',
      `
Examples:
  remux template render nginx.conf.tmpl --var port=443 --var server_name=example.com
  remux template render app.conf.tmpl --vars-file prod.yaml > app.conf
  remux template render motd.tmpl --json | jq -r .text

The language (rmote's): \${expr} inserts a value; a line starting with % is control:
  % if EXPR / % elif EXPR / % else / % endif      % for NAME[, NAME] in EXPR / % endfor      % end closes either
## starts a comment line, %% at the start of a line is a literal %, \\\${ is a literal \${.
Expressions are a safe subset, never code: variables, .attr and [item] of maps and lists, literals,
comparisons, and/or/not, x if c else y, + - * / // %, and calls of the filters upper lower trim replace
join len sorted default int float str indent json and the methods of strings (join split strip upper
lower replace startswith endswith) and maps (keys values items get). \`host\` holds the host's facts:
host.name and host.labels (here: localhost and none), host.hostname, host.os, host.arch, host.python.
A --var value is text: text compared with a number is an error (% if int(port) == 443, not port == 443).
Exit status: 0; 2 a template error (named FILE:LINE), a bad --var or vars file; 1 the renderer failed.`,
    )
    .action(async (file: string, opts: TemplateRenderOptions) => {
      const { templateRender } = await import('../template-commands.js');
      inv.setExitCode(await templateRender(inv, file, opts));
    });
}
