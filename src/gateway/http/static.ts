// The web console's files (dist/web, built by scripts/bundle.mjs), served from our own origin so the
// Content-Security-Policy can say 'self'. Read once at start: only files that exist there are served,
// by exact name, so no request path ever reaches the filesystem.
import type { FastifyInstance } from 'fastify';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { packageFile } from '../../cli/program.js';
import { fail } from './errors.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json; charset=utf-8',
};

export function registerStatic(app: FastifyInstance, log: (line: string) => void): void {
  const dir = packageFile('dist/web');
  const files = new Map<string, { body: Buffer; type: string }>();
  if (existsSync(dir)) {
    for (const name of readdirSync(dir)) {
      const type = TYPES[extname(name)];
      if (type && statSync(join(dir, name)).isFile()) files.set(name, { body: readFileSync(join(dir, name)), type });
    }
  } else {
    log(`no web console files in ${dir} (run npm run build); the API is served all the same`);
  }
  app.get<{ Params: { file?: string } }>('/:file?', async (request, reply) => {
    const file = files.get(request.params.file || 'index.html');
    if (!file) return fail(reply, 404, 'not_found', `no such file: ${request.url.split('?')[0]}`);
    // The files change only with a new build: revalidate, but they hold nothing secret.
    return reply.header('cache-control', 'no-cache').type(file.type).send(file.body);
  });
}
