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
    return first.length >= n ? first.subarray(0, n) : this.join(n);
  }

  /** Takes the first `n` bytes (at most length). */
  take(n: number): Buffer {
    const taken = this.peek(n);
    this.size -= n;
    let whole = 0;
    for (let left = n; left > 0; whole++) {
      const piece = this.pieces[whole] as Buffer;
      if (piece.length > left) {
        this.pieces[whole] = piece.subarray(left);
        break;
      }
      left -= piece.length;
    }
    this.pieces.splice(0, whole);
    return taken;
  }

  /** The first `n` bytes copied out of only the pieces that hold them: a frame's head is read again at
   *  every read while its body arrives, so it must not cost more for a frame spread over many reads. */
  private join(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    for (const piece of this.pieces) {
      if (at === n) break;
      at += piece.copy(out, at, 0, Math.min(piece.length, n - at));
    }
    return out;
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
