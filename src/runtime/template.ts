// Template (remote/tools/template.py): rmote's template language (${expr}, % if/for … % end*, ## comments,
// %% and \${ escapes), rendered on the host over plain data with a safe expression subset. A render
// gets the caller's variables and `host`: the inventory name and labels (from here) and the host's own
// hostname, os, arch and python (from there).
//
//   const text = await host.call(Template.render, 'listen ${port};', { port: 443 });
//   const r = await host.call(Template.file, '/etc/nginx/conf.d/app.conf', source, { port: 443 }, { mode: 0o644 });
//   // { changed, created, diff }
import { remoteSource, toolSource, type ToolSource } from './bootstrap.js';
import { checkArgTypes, editOutcome, fileMode, type ArgTypes, type CliSpec } from './method.js';
import { renderCallArgs, sizeWord } from './call-args.js';
import { commandLineVariables, readLocalText } from './template-vars.js';
import type { Method, WriteOptions } from './tools.js';

/** A template's variables: plain JSON data. `host` is reserved for the host's facts. */
export type Variables = Record<string, unknown>;

export interface RenderOptions {
  /** What errors call the template (its file name): `nginx.conf.tmpl:12: undefined variable port`. */
  name?: string;
}

/** The file's mode (e.g. 0o644, never set-user-ID or set-group-ID), owner and group: each kept, or 0644 and the runtime's user for a new file. */
export interface TemplateFileOptions extends RenderOptions, WriteOptions {}

export interface TemplateFileResult {
  changed: boolean;
  created: boolean;
  /** A unified diff from what the file held (or /dev/null) to the rendered text; empty when unchanged. */
  diff: string;
}

let source: ToolSource | null = null;
// One tool on the host: FileSystem's code and the helpers it uses (Template.file writes with its atomic,
// no-follow writeText),
// the safe expression subset and its filters, then the template language itself.
const PARTS = ['tools/common.py', 'tools/filesystem.py', 'template/expr.py', 'template/filters.py', 'tools/template.py'];
const templateTool = (): ToolSource => (source ??= toolSource('Template', PARTS.map(remoteSource).join('\n')));

const asString = (v: unknown): string => {
  if (typeof v !== 'string') throw new TypeError(`expected a string from the host, got ${typeof v}`);
  return v;
};

const VARIABLES: ArgTypes['positional'][number] = ['variables', 'object', true];

/**
 * `remux rpc HOST Template.render TEMPLATE` and `Template.file PATH TEMPLATE`, as `remux template render`
 * takes them: the template a local file (its name what errors say), the variables --var KEY=VALUE and
 * --vars-file FILE; `options` the method's own (Template.file's mode: rpc's --mode).
 */
function templateCli(positional: string[], options: NonNullable<CliSpec['options']> = {}): CliSpec {
  return {
    positional: [...positional, 'template'],
    options: { var: 'strings', varsFile: 'string', ...options },
    toArgs: (parsed, cwd) => {
      const file = parsed[positional.length] as string;
      const { var: flags = [], varsFile, ...own } = parsed[positional.length + 1] as { var?: string[]; varsFile?: string };
      return [...parsed.slice(0, positional.length), readLocalText(file, cwd), commandLineVariables(flags, varsFile, cwd), { name: file, ...own }];
    },
  };
}

/** A template call for the audit: the template by its size and the variables by their names (their values may be secrets). */
function templateWords(paths: unknown[], text: unknown, variables: unknown, opts: TemplateFileOptions | undefined): string[] {
  const vars = typeof variables === 'object' && variables !== null ? Object.keys(variables).join(',') : undefined;
  const spec: CliSpec = { positional: [...paths.map(() => 'path'), 'template'], options: { name: 'string', vars: 'string', mode: 'mode', owner: 'string', group: 'string' } };
  return renderCallArgs(spec, [...paths, sizeWord(text), { ...opts, vars: vars || undefined }]);
}

/** The rendered text. Touches nothing on the host: the principal's scope must admit it; audited. */
const render: Method<[text: string, variables?: Variables, opts?: RenderOptions], string> = {
  get tool() {
    return templateTool();
  },
  name: 'Template.render',
  remote: 'render',
  cli: templateCli([]),
  operations: (args) => (checkArgTypes('Template.render', { positional: [['text', 'string'], VARIABLES], options: { name: 'string' } }, args), []),
  encode: ([text, variables, opts], resolved) => [text, variables ?? {}, opts?.name ?? '<template>', resolved.host],
  words: ([text, variables, opts]) => templateWords([], text, variables, opts),
  decode: asString,
};

/**
 * Renders and writes `path` atomically (unchanged content and mode: no write). Checked as write_file of
 * the path and, since the diff shows what it held, read_file. An approver is told the template's size:
 * the rendered text exists only on the host.
 */
const file: Method<[path: string, text: string, variables?: Variables, opts?: TemplateFileOptions], TemplateFileResult> = {
  get tool() {
    return templateTool();
  },
  name: 'Template.file',
  remote: 'file',
  content: 'diff',
  cli: { ...templateCli(['path'], { mode: 'mode', owner: 'string', group: 'string' }), print: editOutcome },
  operations: ([path, text, variables, opts]) => {
    checkArgTypes('Template.file', { positional: [['path', 'string'], ['text', 'string'], VARIABLES], options: { name: 'string', mode: 'number', owner: 'string', group: 'string' } }, [path, text, variables, opts]);
    if (opts?.mode !== undefined) fileMode(opts.mode);
    return [{ kind: 'file.write', path, content: text, reads: true }];
  },
  encode: ([path, text, variables, opts], resolved) => [resolved.paths[path], text, variables ?? {}, opts?.name ?? '<template>', resolved.host, opts?.mode ?? null, opts?.owner ?? null, opts?.group ?? null],
  words: ([path, text, variables, opts]) => templateWords([path], text, variables, opts),
  decode: (v) => v as TemplateFileResult,
};

export const Template = { render, file };
