// Structured config files (policies, config.yaml, hosts.yaml): YAML or JSON with ${VAR} expansion,
// and every error reported as file:line so users can find the offending node.
import { existsSync, readFileSync } from 'node:fs';
import { Document, isAlias, isMap, isScalar, isSeq, LineCounter, parse, parseDocument, visit } from 'yaml';
import type { Node as YamlNode, YAMLMap } from 'yaml';
import { z } from 'zod';

export interface ConfigIssue {
  file: string;
  /** 1-based; 0 when the problem concerns the whole file (e.g. it cannot be read). */
  line: number;
  detail: string;
}

const formatIssue = (i: ConfigIssue): string => (i.line > 0 ? `${i.file}:${i.line}: ${i.detail}` : `${i.file}: ${i.detail}`);

/** One or more problems in a config file; `file`, `line` and `detail` describe the first (by line). */
export class ConfigError extends Error {
  readonly file: string;
  readonly line: number;
  readonly detail: string;
  readonly issues: readonly ConfigIssue[];
  /** What to do when the file is fine but the request is not (a name already taken); else: fix the file. */
  hint: string | undefined;

  constructor(file: string, line: number, detail: string, more: readonly ConfigIssue[] = []) {
    const issues = [{ file, line, detail }, ...more];
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.file = file;
    this.line = line;
    this.detail = detail;
    this.issues = issues;
  }

  /** Sorted by line, duplicates dropped; `issues` must not be empty. */
  static of(issues: readonly ConfigIssue[]): ConfigError {
    const seen = new Set<string>();
    const unique = issues
      .filter((i) => !seen.has(formatIssue(i)) && seen.add(formatIssue(i)))
      .sort((a, b) => a.line - b.line);
    const [first, ...rest] = unique;
    if (!first) throw new Error('ConfigError.of needs at least one issue');
    return new ConfigError(first.file, first.line, first.detail, rest);
  }
}

export interface SourceDoc {
  file: string;
  /** The document as plain data, environment variables expanded. */
  value: unknown;
  /** Line of the node at `path` (a map entry's key line), or of its nearest existing ancestor. */
  lineAt(path: ReadonlyArray<string | number>): number;
  /** Unquoted words at `path` (or in the list there) that YAML read as a boolean or a number: `true`, `1.10`. */
  unquotedAt(path: ReadonlyArray<string | number>): UnquotedWord[];
}

export interface UnquotedWord {
  /** As written in the file. */
  word: string;
  as: 'boolean' | 'number';
}

export function loadSourceFile(file: string, env: NodeJS.ProcessEnv = process.env): SourceDoc {
  return parseSource(readSourceText(file), file, env);
}

export function readSourceText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, 0, `cannot read: ${(err as Error).message}`);
  }
}

/** The mapping key written at `offset` (yaml's duplicate-key error points at its first character only). */
function keyAt(text: string, offset: number): string {
  const rest = text.slice(offset);
  return (/^("[^"\n]*"|'[^'\n]*'|[^:\n]*?)\s*:/.exec(rest)?.[1] ?? rest.split('\n')[0] ?? '').trim();
}

/**
 * For each repeated key in a mapping (the document keeps both), the line of its first occurrence, by the
 * repeat's offset: in a long file "duplicate key read_only" alone leaves the user hunting for the other.
 */
function firstKeyLines(doc: Document, lineOf: (offset: number | undefined) => number): Map<number, number> {
  const out = new Map<number, number>();
  visit(doc, {
    Map(_, map) {
      const seen = new Map<unknown, number>();
      for (const { key } of map.items) {
        if (!isScalar(key) || key.range == null) continue;
        const first = seen.get(key.value);
        if (first === undefined) seen.set(key.value, key.range[0]);
        else out.set(key.range[0], lineOf(first));
      }
    },
  });
  return out;
}

function duplicateKey(key: string, firstLine: number | undefined): string {
  return firstLine === undefined ? `duplicate key ${key}` : `duplicate key ${key} (first at line ${firstLine}): rename or merge one of them`;
}

export function parseSource(text: string, file: string, env: NodeJS.ProcessEnv = process.env): SourceDoc {
  const lineCounter = new LineCounter();
  // uniqueKeys (the default) turns duplicate keys into errors instead of "last one wins".
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined): number => (offset === undefined ? 1 : lineCounter.linePos(offset).line);
  const firsts = firstKeyLines(doc, lineOf);
  // A tab used to indent makes yaml misread the lines around it: its other errors (some on the line before) are
  // noise that hides the cause, so the first tab is the one error said.
  const tab = doc.errors.find((e) => e.code === 'TAB_AS_INDENT');
  const issues: ConfigIssue[] = tab
    ? [{ file, line: lineOf(tab.pos[0]), detail: 'tabs are not allowed for indentation: indent with spaces' }]
    : doc.errors.map((e) => ({
        file,
        line: lineOf(e.pos[0]),
        detail: e.code === 'DUPLICATE_KEY' ? duplicateKey(keyAt(text, e.pos[0]), firsts.get(e.pos[0])) : e.message,
      }));
  // Inside { … } or [ … ] a brace ends the collection, so an unquoted ${VAR} breaks it: yaml's own words do not say so.
  const lines = text.split('\n');
  for (const line of new Set(issues.map((i) => i.line))) {
    if (!/[{[][^"'\n]*\$\{/.test(lines[line - 1] ?? '')) continue;
    const first = issues.find((i) => i.line === line)!;
    first.detail += ' (inside { … } or [ … ], quote a ${VAR} value: "${VAR}")';
  }

  visit(doc, {
    Scalar(key, node) {
      // Keys stay literal: the shape of a file never depends on the environment.
      if (key === 'key' || typeof node.value !== 'string') return;
      const result = expandEnv(node.value, env);
      if (typeof result !== 'string') {
        issues.push({ file, line: lineOf(node.range?.[0]), detail: result.error });
      } else if (result !== node.value) {
        // An unquoted `${PORT:-22}` means what writing its value there would mean: 22 is a number.
        node.value = node.type === 'PLAIN' ? retype(result) : result;
      }
    },
  });
  if (issues.length > 0) throw ConfigError.of(issues);

  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  return { file, value, lineAt: (path) => nodeAtPath(doc, path, lineOf).line, unquotedAt: (path) => unquotedAtPath(doc, path) };
}

const VAR_REF = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s;

/** `${VAR}`, `${VAR:-default}` (default when unset or empty, as in sh), `$$` for a literal `$`. */
export function expandEnv(text: string, env: NodeJS.ProcessEnv): string | { error: string } {
  let out = '';
  let i = 0;
  for (let j = text.indexOf('$'); j >= 0; j = text.indexOf('$', i)) {
    out += text.slice(i, j);
    const next = text[j + 1];
    if (next !== '$' && next !== '{') {
      out += '$';
      i = j + 1;
      continue;
    }
    if (next === '$') {
      out += '$';
      i = j + 2;
      continue;
    }
    const close = text.indexOf('}', j + 2);
    if (close < 0) return { error: `unterminated "\${" in ${JSON.stringify(text)}` };
    const body = text.slice(j + 2, close);
    const m = VAR_REF.exec(body);
    if (!m || m[2]?.includes('${')) return { error: `bad variable reference "\${${body}}" (write \${NAME} or \${NAME:-default})` };
    const [, name = '', fallback] = m;
    let value = env[name];
    if (fallback !== undefined && !value) value = fallback;
    if (value === undefined) return { error: `environment variable ${name} is not set (write \${${name}:-default} to give a default)` };
    out += value;
    i = close + 1;
  }
  return out + text.slice(i);
}

function retype(text: string): unknown {
  try {
    const v: unknown = parse(text, { logLevel: 'silent' });
    return v === null || typeof v === 'number' || typeof v === 'boolean' ? v : text;
  } catch {
    return text;
  }
}

/** The node at `path` (null when it is missing) and the line of it or of its nearest existing ancestor. */
function nodeAtPath(doc: Document, path: ReadonlyArray<string | number>, lineOf: (offset: number | undefined) => number): { node: unknown; line: number } {
  let node: unknown = doc.contents;
  let line = lineOf(doc.contents?.range?.[0]);
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return { node: null, line };
      line = lineOf((pair.key as YamlNode).range?.[0]);
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as YamlNode | undefined;
      if (!item) return { node: null, line };
      line = lineOf(item.range?.[0]);
      node = item;
    } else {
      return { node: null, line };
    }
  }
  return { node: isAlias(node) ? node.resolve(doc) : node, line };
}

/** Unquoted scalars at `path` (or items of the list there) that YAML read as a boolean or a number, as written. */
function unquotedAtPath(doc: Document, path: ReadonlyArray<string | number>): UnquotedWord[] {
  const { node } = nodeAtPath(doc, path, () => 0);
  const candidates = isSeq(node) ? node.items : [node];
  return candidates.flatMap((n): UnquotedWord[] => {
    if (!isScalar(n) || n.type !== 'PLAIN' || n.source === undefined) return [];
    if (typeof n.value === 'boolean') return [{ word: n.source, as: 'boolean' }];
    return typeof n.value === 'number' ? [{ word: n.source, as: 'number' }] : [];
  });
}

/** Why an unquoted word is not text to YAML, and how to write it as text; '' when there is none. */
function quoteHint(words: readonly UnquotedWord[]): string {
  const [first] = words;
  if (first === undefined) return '';
  return ` (YAML reads an unquoted ${first.word} as a ${first.as}, not as text: write "${first.word}" to mean the word)`;
}

/** Renders a key path the way users read it: `policies.read_only.capabilities[2].operation`. */
export function renderPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

/** A strict object whose unknown-key errors list the keys that are allowed. */
export function strictObject<S extends z.core.$ZodLooseShape>(shape: S) {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? `allowed keys: ${allowed}` : undefined),
  });
}

export function validate<T>(doc: SourceDoc, schema: z.ZodType<T>): T {
  const result = schema.safeParse(doc.value);
  if (result.success) return result.data;
  const issues: ConfigIssue[] = [];
  for (const iss of result.error.issues) {
    const path = iss.path.map((s) => (typeof s === 'symbol' ? String(s) : s));
    if (iss.code === 'unrecognized_keys') {
      // One issue per key, at the key's own line; zod's stock message only repeats the key names.
      const hint = iss.message.startsWith('Unrecognized key') ? '' : ` (${iss.message})`;
      for (const key of iss.keys) {
        issues.push({ file: doc.file, line: doc.lineAt([...path, key]), detail: `${renderPath([...path, key])}: unknown key${hint}` });
      }
      continue;
    }
    let what = iss.message.replace(/^Invalid input: /, '');
    if (iss.code === 'invalid_type' && iss.message.endsWith('received undefined')) what = `missing (expected ${iss.expected})`;
    // A record key's own complaint (e.g. a name pattern) is nested one level down.
    if (iss.code === 'invalid_key') what = `invalid key: ${iss.issues.map((i) => i.message).join('; ')}`;
    // `resource: true` or `version: 1.10` in a place for text: say why YAML saw no text there.
    if (/\bstring/.test(what)) what += quoteHint(doc.unquotedAt(path));
    issues.push({ file: doc.file, line: doc.lineAt(path), detail: path.length > 0 ? `${renderPath(path)}: ${what}` : what });
  }
  throw ConfigError.of(issues);
}

// ---- Editing a file in place (`remux hosts add`, `remux principal …`) ----------------------------

/** `file` as a Document to change and write back, or a new one starting with `header` (a comment). */
export function editableDocument(file: string, header: string): Document {
  if (!existsSync(file)) {
    const doc = new Document({});
    doc.commentBefore = header;
    return doc;
  }
  // Raw text, not the env-expanded values: comments and ${VAR} references are written back as they were.
  return parseDocument(readFileSync(file, 'utf8'));
}

/** The map under the top-level `key` (`hosts`, `principals`), made when the file has none yet. */
export function topLevelMap(doc: Document, key: string): YAMLMap {
  if (!isMap(doc.contents)) doc.contents = doc.createNode({});
  const existing = doc.get(key, true);
  if (isMap(existing)) return existing;
  // `key:` with no value: give it a map, keeping the comment that was on the empty value.
  const map = doc.createNode({});
  if (isScalar(existing)) map.commentBefore = existing.comment;
  doc.set(key, map);
  return map;
}
