import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { alignedBuffer } from './fuse/libc.ts';

/**
 * Wire format of the replication channel. Every frame is
 *   u32 bodyLength | u32 headerLength | header (JSON, utf8) | data (bodyLength - 4 - headerLength bytes)
 * Lengths are checked before anything is allocated: a frame larger than MAX_BODY, a header larger than
 * MAX_HEADER or a header that is not a JSON object kills the connection (never the process).
 */
export const MAX_HEADER = 256 * 1024;
export const MAX_DATA = 4 * 1024 * 1024;
export const MAX_BODY = 4 + MAX_HEADER + MAX_DATA;
/** before authentication a peer may send only small frames */
export const MAX_BODY_UNAUTH = 4096;
export const PROTOCOL_VERSION = 1;

export interface Frame {
  readonly h: Record<string, unknown>;
  readonly data: Buffer;
  /**
   * A large frame is assembled in a buffer of its decoder's pool: release() hands it back once its data
   * was used (written). Never calling it is safe (the buffer is then left to the garbage collector).
   */
  release?: () => void;
}

/**
 * Frames carrying at least this much data are assembled in reused buffers, with the data starting at a
 * multiple of POOL_ALIGN: the applier writes resync data from there with O_DIRECT, without a copy, and
 * the stream does not allocate a large buffer per frame (a 1 GiB resync in fresh 4 MiB buffers spent a
 * third of the secondary's CPU in the garbage collector).
 */
export const POOLED_DATA = 256 * 1024;
export const POOL_ALIGN = 4096;
/** free buffers kept for reuse (the default window holds four 4 MiB resync frames) */
const POOL_MAX = 8;

export class FrameError extends Error {}

/** the length words and header of a frame whose dataLen bytes of data are sent after it, as they are */
export function encodeFrameHead(header: object, dataLen: number): Buffer {
  const hj = Buffer.from(JSON.stringify(header), 'utf8');
  const out = Buffer.allocUnsafe(8 + hj.length);
  out.writeUInt32BE(4 + hj.length + dataLen, 0);
  out.writeUInt32BE(hj.length, 4);
  hj.copy(out, 8);
  return out;
}

export function encodeFrame(header: object, data?: Buffer | Uint8Array, dataLen = data?.length ?? 0): Buffer {
  const hj = Buffer.from(JSON.stringify(header), 'utf8');
  const body = 4 + hj.length + dataLen;
  const out = Buffer.allocUnsafe(4 + body);
  out.writeUInt32BE(body, 0);
  out.writeUInt32BE(hj.length, 4);
  hj.copy(out, 8);
  if (data && dataLen > 0) out.set(data.subarray(0, dataLen), 8 + hj.length);
  return out;
}

/** Incremental decoder: push chunks, get complete frames; throws FrameError on malformed input. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly pool: Buffer[] = [];
  maxBody: number;
  constructor(maxBody = MAX_BODY) {
    this.maxBody = maxBody;
  }

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Frame[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peek(4);
      const body = head.readUInt32BE(0);
      if (body < 4 || body > this.maxBody) throw new FrameError(`frame length ${body} out of range`);
      if (this.buffered < 4 + body) break;
      const hlen = this.peek(8).readUInt32BE(4);
      if (hlen < 2 || hlen > MAX_HEADER || hlen > body - 4) throw new FrameError(`header length ${hlen} out of range`);
      let buf: Buffer;
      let release: (() => void) | undefined;
      if (body - 4 - hlen >= POOLED_DATA) {
        // placed so that the data (after the 8 length bytes and the header) starts aligned
        const pad = (POOL_ALIGN - ((8 + hlen) % POOL_ALIGN)) % POOL_ALIGN;
        const whole = this.pooled(pad + 4 + body);
        buf = whole.subarray(pad, pad + 4 + body);
        this.copyOut(buf);
        let given = false;
        release = () => {
          if (given) return;
          given = true;
          if (this.pool.length < POOL_MAX) this.pool.push(whole);
        };
      } else {
        buf = this.take(4 + body);
      }
      let h: unknown;
      try {
        h = JSON.parse(buf.toString('utf8', 8, 8 + hlen));
      } catch {
        throw new FrameError('header is not JSON');
      }
      if (typeof h !== 'object' || h === null || Array.isArray(h)) throw new FrameError('header is not an object');
      if (typeof (h as { t?: unknown }).t !== 'string') throw new FrameError('header has no type');
      out.push({ h: h as Record<string, unknown>, data: buf.subarray(8 + hlen), ...(release ? { release } : {}) });
    }
    return out;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    const first = this.gather(n);
    this.chunks.unshift(first);
    return first;
  }

  private take(n: number): Buffer {
    const out = this.chunks[0].length >= n ? this.split(n) : this.gather(n);
    this.buffered -= n;
    return out;
  }

  /**
   * A free pool buffer of at least n bytes (and at most twice that: a 1 MiB write does not hold a 4 MiB
   * buffer), or a new one: what the queued frames hold stays about what they carry.
   */
  private pooled(n: number): Buffer {
    const i = this.pool.findIndex((b) => b.length >= n && b.length <= 2 * n);
    if (i >= 0) return this.pool.splice(i, 1)[0];
    return alignedBuffer(n, POOL_ALIGN);
  }

  /** moves the first out.length bytes into out */
  private copyOut(out: Buffer): void {
    let have = 0;
    while (have < out.length) {
      const c = this.chunks[0];
      const n = Math.min(c.length, out.length - have);
      c.copy(out, have, 0, n);
      have += n;
      if (n === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(n);
    }
    this.buffered -= out.length;
  }

  /** the first n bytes of the first chunk, which holds at least n */
  private split(n: number): Buffer {
    const first = this.chunks[0];
    if (first.length === n) return this.chunks.shift()!;
    this.chunks[0] = first.subarray(n);
    return first.subarray(0, n);
  }

  /**
   * The first n bytes, joined from as many chunks as they span (only those: a long backlog of small
   * chunks is not copied again for every frame)
   */
  private gather(n: number): Buffer {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      const c = this.chunks[0];
      if (have + c.length <= n) {
        parts.push(this.chunks.shift()!);
        have += c.length;
      } else {
        parts.push(this.split(n - have));
        have = n;
      }
    }
    return Buffer.concat(parts, n);
  }
}

// ---- authentication: HMAC-SHA256 challenge/response, both directions, bound to the module name ----

export function nonce(): string {
  return randomBytes(32).toString('hex');
}

export function authMac(key: Buffer, role: 'P' | 'S', module: string, theirNonce: string, myNonce: string): string {
  return createHmac('sha256', key).update(`vigil-mirror/${PROTOCOL_VERSION}|${role}|${module}|${theirNonce}|${myNonce}`).digest('hex');
}

export function macEqual(a: unknown, b: string): boolean {
  if (typeof a !== 'string' || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

// ---- header field accessors that validate (frames come from the network) ----

export function str(h: Record<string, unknown>, k: string, max = 4096): string {
  const v = h[k];
  if (typeof v !== 'string' || v.length > max) throw new FrameError(`field ${k} must be a string`);
  return v;
}
export function int(h: Record<string, unknown>, k: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = h[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new FrameError(`field ${k} must be an integer in [${min}, ${max}]`);
  return v;
}
export function num(h: Record<string, unknown>, k: string): number {
  const v = h[k];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new FrameError(`field ${k} must be a number`);
  return v;
}
