// How many connections the daemon's HTTP server holds. Nothing authenticates a TCP connection: a flood
// of idle ones took every descriptor the daemon had, and with them its CLI socket, commands' pipes and
// the audit store; and one client alone could take every place the cap leaves. Past either limit a new
// connection is closed at once (said in the log at most once a minute).
import { readFileSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { clientKey } from '../relay/network.js';

export const MAX_CONNECTIONS = 4096;

/** Connections served at once: half the daemon's open-file limit (the rest is for its own work), at most MAX_CONNECTIONS. */
function connectionLimit(): number {
  let files = Infinity;
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) files = Number(m[1]);
  } catch {
    // No /proc (not Linux): the cap alone.
  }
  return Math.min(MAX_CONNECTIONS, Math.floor(files / 2));
}

/** Counts refusals and says how many in the log, at most once a minute; `last` is the latest refused peer. */
function refusalLog(log: (line: string) => void, say: (refused: string, last: string) => string): (peer: string) => void {
  let refused = 0;
  let toldAt = -Infinity;
  return (peer) => {
    refused++;
    if (Date.now() - toldAt < 60_000) return;
    toldAt = Date.now();
    log(say(`${refused} connection${refused === 1 ? '' : 's'}`, peer));
    refused = 0;
  };
}

/**
 * The limits: in all, half the open-file limit (at most MAX_CONNECTIONS); from one address (the TCP
 * peer; an IPv6 one with the rest of its /64), a quarter of that. A trusted proxy's address is every
 * client behind it: `shared` ones are held to the total alone.
 */
export function limitConnections(server: Server, shared: (address: string) => boolean, log: (line: string) => void): void {
  server.maxConnections = connectionLimit();
  const perAddress = Math.max(1, Math.floor(server.maxConnections / 4));
  const full = refusalLog(
    log,
    (refused, last) => `HTTP: refused ${refused}: ${server.maxConnections} are open, the most served at once (half the open-file limit, at most ${MAX_CONNECTIONS}); the last from ${last}`,
  );
  const crowded = refusalLog(
    log,
    (refused, last) => `HTTP: refused ${refused} from addresses that held ${perAddress} already, the most one address is served (a quarter of ${server.maxConnections}); the last from ${last}`,
  );
  server.on('drop', (peer) => full(peer?.remoteAddress ?? 'an address gone already'));

  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const peer = socket.remoteAddress;
    // No address: the peer is already gone, and its socket with it.
    if (peer === undefined || shared(peer)) return;
    // An IPv6 peer is counted with the rest of its /64, which it holds whole.
    const address = clientKey(peer);
    const held = open.get(address) ?? 0;
    if (held >= perAddress) {
      crowded(peer);
      socket.destroy();
      return;
    }
    open.set(address, held + 1);
    socket.once('close', () => {
      const left = open.get(address)! - 1;
      if (left === 0) open.delete(address);
      else open.set(address, left);
    });
  });
}
