// Length-prefixed frames cut out of a byte stream as it is read (the runtime's link to a host, the daemon's
// client connections). The reads are kept as they came until a frame is whole: a frame within one read is
// a view of it, not copied; one spread over several reads (a 64 KiB frame mostly is) is joined once, into
// a buffer of its own bytes alone.

export class ReadBuffer {
  private pieces: Buffer[] = [];
  private size = 0;

  /** Bytes read and not yet taken. */
  get length(): number {
    return this.size;
  }

  push(chunk: Buffer): void {
    this.pieces.push(chunk);
    this.size += chunk.length;
  }

  /** The first `n` bytes (at most length), left in place: a frame's head. */
  peek(n: number): Buffer {
    const first = this.pieces[0] as Buffer;
    return first.length >= n ? first.subarray(0, n) : Buffer.concat(this.pieces, n);
  }

  /** Takes the first `n` bytes (at most length). */
  take(n: number): Buffer {
    const first = this.pieces[0] as Buffer;
    const taken = first.length >= n ? first.subarray(0, n) : Buffer.concat(this.pieces, n);
    this.size -= n;
    while (n > 0) {
      const piece = this.pieces[0] as Buffer;
      if (piece.length > n) {
        this.pieces[0] = piece.subarray(n);
        break;
      }
      this.pieces.shift();
      n -= piece.length;
    }
    return taken;
  }
}

/**
 * `bytes` to keep (queued until someone takes them), or a copy of them when they are a small part of the
 * memory they hold on to: a view of a read full of other frames would keep all of it alive, and a peer
 * sending tiny frames among large ones could make what waits within a window hold many times the window.
 */
export function owned(bytes: Buffer): Buffer {
  return bytes.buffer.byteLength > 2 * bytes.length ? Buffer.from(bytes) : bytes;
}
