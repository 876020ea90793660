// TCP connections opened as soon as an in-process fan-out knows its hosts, before the SSH machinery
// and the policy engine load. Each sshd forks and re-executes itself for a new connection before it
// sends its banner: started early, that work runs on another core while this process is still busy
// loading. Nothing is sent on these sockets until ssh2 takes them over (host keys are checked then,
// as on any connection); the ones no command needed are closed at the end.
import net from 'node:net';

export interface EarlySocket {
  socket: net.Socket;
  /** Set when the connection failed before anyone took the socket. */
  error: Error | null;
}

export class EarlySockets {
  private readonly waiting = new Map<string, EarlySocket>();

  /** Starts connecting to address:port for the host `name`. */
  start(name: string, address: string, port: number): EarlySocket {
    const socket = net.connect({ host: address, port });
    socket.setNoDelay(true);
    const early: EarlySocket = { socket, error: null };
    // Keeps a refused or unreachable early connection from being an unhandled error; reported on take().
    socket.once('error', (err) => (early.error = err));
    this.waiting.set(endpointKey(name, address, port), early);
    return early;
  }

  /** The socket started for exactly this endpoint, handed out once. */
  take(name: string, address: string, port: number): EarlySocket | undefined {
    const key = endpointKey(name, address, port);
    const early = this.waiting.get(key);
    this.waiting.delete(key);
    return early;
  }

  /** Closes the sockets no command took (denied everywhere, nothing to run). */
  closeUnused(): void {
    for (const early of this.waiting.values()) early.socket.destroy();
    this.waiting.clear();
  }
}

function endpointKey(name: string, address: string, port: number): string {
  return `${name}\0${address}\0${port}`;
}
