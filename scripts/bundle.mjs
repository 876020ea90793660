// Bundles the compiled CLI (dist/src/cli/main.js, from tsc) into one CommonJS file, dist/src/cli/remux.cjs,
// which launch.cts (started by bin/remux and bin/remux.js) runs with a V8 code cache. One file instead of ~150 ES and
// CommonJS modules saves their resolution and loading; CommonJS because only a classic script can use
// a code cache (vm.Script) without experimental flags. It sits beside main.js, so the paths the CLI
// finds relative to its own module (package.json, bin/remux.js) stay right.
//
// esbuild-wasm: no native binary and no install script. Native addons stay outside: better-sqlite3 and
// node-pty (found through their packages: they load their binaries relative to themselves), and ssh2's optional crypto binding and cpu-features, which are loaded
// from ssh2's own location exactly as ssh2 does unbundled.
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { build } from 'esbuild-wasm';

/** ssh2's require()s of native code, answered relative to the installed ssh2 package. */
const ssh2Native = {
  name: 'ssh2-native',
  setup(b) {
    b.onResolve({ filter: /(^cpu-features$|\.node$)/ }, (args) => ({ path: args.path, namespace: 'ssh2-native', pluginData: args.resolveDir }));
    b.onLoad({ filter: /.*/, namespace: 'ssh2-native' }, (args) => {
      // ssh2 asks for './crypto/build/Release/sshcrypto.node' from lib/protocol and 'cpu-features' from there too.
      const request = args.path.endsWith('.node') ? `./protocol/${args.path.replace(/^\.\//, '')}` : args.path;
      return { contents: `module.exports = require('node:module').createRequire(require.resolve('ssh2'))(${JSON.stringify(request)});`, loader: 'js' };
    });
  },
};

/** Native addons, the daemon's HTTP stack and the MCP SDK stay in node_modules, and so does the ES-only sandbox-runtime. */
const EXTERNAL = ['better-sqlite3', 'node-pty', 'fastify', '@fastify/cookie', '@fastify/websocket', 'selfsigned', '@modelcontextprotocol/sdk', '@anthropic-ai/sandbox-runtime'];

await build({
  entryPoints: ['dist/src/cli/main.js'],
  outfile: 'dist/src/cli/remux.cjs',
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // The launcher's code cache is keyed by the bundle's bytes; ASCII output also makes it a one-byte string.
  charset: 'ascii',
  // The CLI's own bundle (and its code cache) stays small.
  external: EXTERNAL,
  plugins: [ssh2Native],
  // import.meta does not exist in CommonJS: the bundle's own file URL stands in for it.
  define: { 'import.meta.url': '__remuxModuleUrl' },
  banner: { js: "const __remuxModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
  // The ssh2-native modules resolve the installed ssh2 on purpose, though its JavaScript is bundled.
  logOverride: { 'require-resolve-not-external': 'silent' },
});

// The hook client a Docker container runs (src/agents/hook-main.ts): Node's own modules only, one file
// the supervisor mounts into the container (src/agents/sandbox.ts, dockerArgv).
await build({
  entryPoints: ['dist/src/agents/hook-main.js'],
  outfile: 'dist/src/hook.cjs',
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node18',
  logLevel: 'warning',
});

// The supervisor of an agent session's pane (src/agents/supervisor-main.ts), which every `remux code
// start` waits for: one ES module file instead of ~300 (it started in 0.56 s, bundled 0.28 s; Node alone
// 0.12). ES because sandbox-runtime is ES-only. Beside the unbundled modules at the same depth, so their
// paths relative to import.meta.url stay right.
await build({
  entryPoints: ['dist/src/agents/supervisor-main.js'],
  outfile: 'dist/src/agents/supervisor.mjs',
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // ssh2 too: its native crypto loads relative to itself (the CLI bundle's plugin is for CommonJS).
  external: [...EXTERNAL, 'ssh2', 'cpu-features'],
  // CommonJS packages bundled into an ES module still require() Node's own modules.
  banner: { js: "import { createRequire as __remuxCreateRequire } from 'node:module'; const require = __remuxCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});

// The launcher decodes the bundle as latin1 (src/cli/launch.cts): that is exact only for ASCII. esbuild's
// charset option escapes strings but leaves regular expression literals as written, so a non-ASCII
// character in one (write \u276f instead of the glyph) would silently change what the regex matches.
const codeLines = readFileSync('dist/src/cli/remux.cjs', 'latin1').split('\n');
const nonAscii = codeLines
  .map((line, i) => ({ line, at: i + 1 }))
  .filter(({ line }) => [...line].some((c) => c.charCodeAt(0) > 0x7f) && !/^\s*(\/\/|\/\*|\*)/.test(line));
if (nonAscii.length > 0) {
  const where = nonAscii.slice(0, 10).map(({ line, at }) => `dist/src/cli/remux.cjs:${at}: non-ASCII outside a comment: ${line.trim().slice(0, 120)}`);
  throw new Error(`${where.join('\n')}\nwrite these characters as \\u escapes in the TypeScript source`);
}

// The web console: web/main.ts bundled for browsers into dist/web beside its page and stylesheet, all
// served by the daemon from its own origin (no CDN, no inline code: see the CSP in src/gateway/http).
mkdirSync('dist/web', { recursive: true });
for (const file of ['index.html', 'style.css']) copyFileSync(`web/${file}`, `dist/web/${file}`);
// xterm.js's stylesheet, served from our origin like everything else.
copyFileSync('node_modules/@xterm/xterm/css/xterm.css', 'dist/web/xterm.css');
await build({
  entryPoints: ['web/main.ts'],
  outfile: 'dist/web/main.js',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  logLevel: 'warning',
});
