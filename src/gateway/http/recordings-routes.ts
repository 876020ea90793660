// Recordings (asciicast v2 in $REMUX_HOME/recordings: browser attaches, written by the terminal, and whole
// sessions, by the daemon's session recorder): a list and the files themselves. An admin sees every
// recording, anyone else only those of its own attaches and of the sessions it created.
import type { FastifyInstance } from 'fastify';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { describeRecording, listRecordings, recordingPath } from '../../sessions/recording.js';
import { fail } from './errors.js';
import { principalOfRequest } from './routes.js';

export function registerRecordingRoutes(api: FastifyInstance, dir: string): void {
  api.get('/api/recordings', async (request) => {
    const principal = principalOfRequest(request);
    return listRecordings(dir).filter((r) => principal.scope.admin || r.principal === principal.name);
  });

  api.get<{ Params: { id: string } }>('/api/recordings/:id', async (request, reply) => {
    const principal = principalOfRequest(request);
    const { id } = request.params;
    let file: string;
    try {
      file = recordingPath(dir, id);
    } catch (err) {
      return fail(reply, 400, 'bad_request', (err as Error).message);
    }
    const info = describeRecording(dir, id);
    if (!info) return fail(reply, 404, 'not_found', `no recording ${id}`);
    if (!principal.scope.admin && info.principal !== principal.name) {
      return fail(reply, 403, 'out_of_scope', `out of scope for ${principal.name}: recording ${id} is of another principal's attach or session`);
    }
    // O_NOFOLLOW as describeRecording: a link planted in place of a recording is not followed.
    const body = (await open(file, constants.O_RDONLY | constants.O_NOFOLLOW)).createReadStream();
    return reply.type('application/x-asciicast').header('content-disposition', `attachment; filename="${id}.cast"`).send(body);
  });
}
