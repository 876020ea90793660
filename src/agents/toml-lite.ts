// Enough of TOML to find the commands in codex's config.toml (its MCP servers' `command` and `args`, its
// `notify` program): tables, arrays of tables, dotted and quoted keys, strings of all four kinds, arrays and
// inline tables. Other values (numbers, booleans, dates) are kept as their text. Anything else is an error:
// the caller then reads no commands from the file, and codex would refuse to start on it too.

type Table = Record<string, unknown>;
// Tables without a prototype: a key named __proto__ is a key like any other.
const newTable = (): Table => Object.create(null) as Table;

export function parseTomlLite(text: string): Table {
  const root = newTable();
  let table = root;
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`TOML: ${what} at offset ${i}`);
  };
  const spaces = (): void => {
    while (text[i] === ' ' || text[i] === '\t') i++;
  };
  // Spaces, newlines and comments: what may come between an array's items.
  const blanks = (): void => {
    for (;;) {
      spaces();
      if (text[i] === '#') while (i < text.length && text[i] !== '\n') i++;
      else if (text[i] === '\n' || text[i] === '\r') i++;
      else return;
    }
  };
  const ESCAPES: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', e: '\x1b', '"': '"', '\\': '\\' };
  const basicString = (multiline: boolean): string => {
    let out = '';
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      if (multiline ? text.startsWith('"""', i) && text[i + 3] !== '"' : text[i] === '"') {
        i += multiline ? 3 : 1;
        return out;
      }
      const c = text[i++] as string;
      if (c === '\n' && !multiline) fail('newline in a string');
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = text[i++] ?? '';
      if (multiline && /[ \t\r\n]/.test(e)) {
        // A line-ending backslash joins the lines, dropping the blanks after it.
        i--;
        while (/[ \t\r\n]/.test(text[i] ?? '')) i++;
      } else if (e === 'u' || e === 'U') {
        const hex = text.slice(i, i + (e === 'u' ? 4 : 8));
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== (e === 'u' ? 4 : 8)) fail('bad \\u escape');
        out += String.fromCodePoint(parseInt(hex, 16));
        i += hex.length;
      } else {
        out += ESCAPES[e] ?? fail(`unknown escape \\${e}`);
      }
    }
  };
  const literalString = (multiline: boolean): string => {
    let end = text.indexOf(multiline ? "'''" : "'", i);
    if (end < 0) fail('unterminated string');
    // Up to two quotes right before the closing ones are content.
    if (multiline) for (let extra = 0; extra < 2 && text[end + 3] === "'"; extra++) end++;
    const out = text.slice(i, end);
    if (!multiline && out.includes('\n')) fail('newline in a string');
    i = end + (multiline ? 3 : 1);
    return out;
  };
  const string = (): string | undefined => {
    for (const [open, multiline, read] of [['"""', true, basicString], ["'''", true, literalString], ['"', false, basicString], ["'", false, literalString]] as const) {
      if (!text.startsWith(open, i)) continue;
      i += open.length;
      // A newline right after the opening quotes of a multi-line string is not part of it.
      if (multiline && text.startsWith('\r\n', i)) i += 2;
      else if (multiline && text[i] === '\n') i++;
      return read(multiline);
    }
    return undefined;
  };
  const key = (): string[] => {
    const parts: string[] = [];
    for (;;) {
      spaces();
      const quoted = text[i] === '"' || text[i] === "'" ? string() : undefined;
      if (quoted !== undefined) parts.push(quoted);
      else {
        const bare = /^[A-Za-z0-9_-]+/.exec(text.slice(i))?.[0] ?? fail('a key expected');
        parts.push(bare);
        i += bare.length;
      }
      spaces();
      if (text[i] !== '.') return parts;
      i++;
    }
  };
  // The table at `path` below `from`, made when missing; through an array of tables, its last one.
  const tableAt = (from: Table, path: string[]): Table => {
    let t = from;
    for (const part of path) {
      let next = t[part] ?? (t[part] = newTable());
      if (Array.isArray(next)) next = next[next.length - 1];
      if (next === null || typeof next !== 'object' || Array.isArray(next)) fail(`${path.join('.')} is not a table`);
      t = next as Table;
    }
    return t;
  };
  const assign = (into: Table, path: string[]): void => {
    const last = path[path.length - 1] as string;
    const t = tableAt(into, path.slice(0, -1));
    spaces();
    if (text[i++] !== '=') fail('= expected');
    spaces();
    t[last] = value();
  };
  const value = (): unknown => {
    const s = string();
    if (s !== undefined) return s;
    if (text[i] === '[') {
      i++;
      const items: unknown[] = [];
      for (;;) {
        blanks();
        if (text[i] === ']') break;
        items.push(value());
        blanks();
        if (text[i] === ',') i++;
        else if (text[i] !== ']') fail(', or ] expected');
      }
      i++;
      return items;
    }
    if (text[i] === '{') {
      i++;
      const inline = newTable();
      spaces();
      if (text[i] === '}') {
        i++;
        return inline;
      }
      for (;;) {
        assign(inline, key());
        spaces();
        const c = text[i++];
        if (c === '}') return inline;
        if (c !== ',') fail(', or } expected');
      }
    }
    const scalar = /^[^\s,\]}#]+/.exec(text.slice(i))?.[0] ?? fail('a value expected');
    i += scalar.length;
    return scalar;
  };

  for (;;) {
    blanks();
    if (i >= text.length) return root;
    if (text.startsWith('[[', i)) {
      i += 2;
      const path = key();
      if (!text.startsWith(']]', i)) fail(']] expected');
      i += 2;
      const parent = tableAt(root, path.slice(0, -1));
      const last = path[path.length - 1] as string;
      const list = parent[last] ?? (parent[last] = []);
      if (!Array.isArray(list)) fail(`${path.join('.')} is not an array of tables`);
      table = newTable();
      (list as unknown[]).push(table);
    } else if (text[i] === '[') {
      i++;
      const path = key();
      if (text[i++] !== ']') fail('] expected');
      table = tableAt(root, path);
    } else {
      assign(table, key());
    }
    // The rest of the line: blanks and a comment only.
    spaces();
    if (text[i] === '#') while (i < text.length && text[i] !== '\n') i++;
    if (i < text.length && text[i] !== '\n' && !text.startsWith('\r\n', i)) fail('end of line expected');
  }
}
