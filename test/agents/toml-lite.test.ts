// The TOML subset remux reads codex's config.toml with (src/agents/toml-lite.ts): what it finds there
// decides which programs stay read-only in an agent's sandbox, so each form codex's own parser accepts for
// an MCP server's command is tried, and what it must refuse.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTomlLite } from '../../src/agents/toml-lite.js';

const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

describe('parseTomlLite', () => {
  it('reads tables, quoted and dotted keys, inline tables and arrays over several lines with comments', () => {
    const text = [
      '# codex',
      'model = "gpt-5" # trailing',
      'notify = ["python3", "/home/u/notify.py"]',
      'approval_policy = "on-request"',
      'max = 12',
      '',
      '[mcp_servers.docs]',
      'command = "/home/u/bin/docs-mcp"',
      'args = [',
      '  "--root", # the root',
      "  '/home/u/docs',",
      ']',
      'env = { TOKEN_FILE = "/home/u/.t", "a b" = "c" }',
      '',
      '[mcp_servers."my server"]',
      "command = 'node'",
      'args = ["/home/u/srv #1.js"]',
      '',
      '[ mcp_servers . inline ]',
      'x = 1',
      '[mcp_servers]',
      'other = { command = "/w/tools/o.sh", args = [], nested = { command = "/deep" } }',
      'dotted.command = "/home/u/d.sh"',
      '',
      '[projects."/home/u/repo"]',
      'trust_level = "trusted"',
    ].join('\n');
    assert.deepEqual(plain(parseTomlLite(text)), {
      model: 'gpt-5',
      notify: ['python3', '/home/u/notify.py'],
      approval_policy: 'on-request',
      max: '12',
      mcp_servers: {
        docs: { command: '/home/u/bin/docs-mcp', args: ['--root', '/home/u/docs'], env: { TOKEN_FILE: '/home/u/.t', 'a b': 'c' } },
        'my server': { command: 'node', args: ['/home/u/srv #1.js'] },
        inline: { x: '1' },
        other: { command: '/w/tools/o.sh', args: [], nested: { command: '/deep' } },
        dotted: { command: '/home/u/d.sh' },
      },
      projects: { '/home/u/repo': { trust_level: 'trusted' } },
    });
  });

  it('reads escapes, multi-line strings of both kinds, arrays of tables, CRLF lines', () => {
    const text = [
      'a = "q\\"uote\\\\back\\tTab\\u00e9\\U0001F600"',
      'b = """',
      'one \\',
      '   two"""',
      "c = '''",
      "raw \\n ''''",
      'd = """x""""',
      '[[hooks]]',
      'command = "/h/1.sh"',
      '[[hooks]]',
      'command = "/h/2.sh"',
      '[hooks.sub]',
      'k = "v"',
    ].join('\r\n');
    assert.deepEqual(plain(parseTomlLite(text)), {
      a: 'q"uote\\back\tTabé😀',
      b: 'one two',
      c: "raw \\n '",
      d: 'x"',
      hooks: [{ command: '/h/1.sh' }, { command: '/h/2.sh', sub: { k: 'v' } }],
    });
  });

  it('keeps a key named __proto__ a key (no prototype is reached)', () => {
    const t = parseTomlLite('[__proto__]\ncommand = "/x"\n[a]\n__proto__ = { polluted = "yes" }\n');
    assert.equal(JSON.stringify(t), '{"__proto__":{"command":"/x"},"a":{"__proto__":{"polluted":"yes"}}}');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(({} as Record<string, unknown>).command, undefined);
  });

  it('refuses what is not TOML, saying where', () => {
    for (const bad of ['a = "open', 'a = "x\ny"', 'a = [1, 2', 'a = { b = 1', '[t', 'a == 1', 'a = "x" y', 'a = "\\q"', '= 1', "a = 'x", 'a.b = 1\n[a.b]\n', '[[a]]\nx = 1\n[a.x]\n']) {
      assert.throws(() => parseTomlLite(bad), /^Error: TOML: .* at offset \d+$/, JSON.stringify(bad));
    }
  });
});
