import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Applier } from '../../node-service/src/mirror/apply.ts';
import { ranges } from '../../node-service/src/mirror/copy.ts';
import { isAligned } from '../../node-service/src/mirror/fuse/libc.ts';
import { copyChunk } from '../../node-service/src/mirror/primary.ts';
import { encodeFrameHead, FrameDecoder, POOL_ALIGN, POOLED_DATA, type Frame } from '../../node-service/src/mirror/protocol.ts';

function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/**
 * The resync's stream: large data operations written with O_DIRECT on the secondary (an aligned head
 * from a reused aligned buffer, the tail through the page cache), joined zone ranges, the chunk size.
 */
describe('mirror resync stream', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-resync-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('large data operations at aligned and unaligned offsets and lengths leave exactly the bytes sent', async () => {
    const a = new Applier([dir]);
    await a.init();
    const size = 3 * (1 << 20) + 1234;
    await a.apply({ t: 'ensure', d: 0, p: 'big', ty: 'f', m: 0o640, u: process.getuid!(), g: process.getgid!(), s: size });
    const want = Buffer.alloc(size);
    // an aligned 1 MiB chunk (all direct), an aligned chunk with a tail, a chunk at an unaligned offset
    const parts: [number, number][] = [
      [0, 1 << 20],
      [1 << 20, (1 << 20) + 5000],
      [(2 << 20) + 5000, size - (2 << 20) - 5000],
    ];
    for (const [i, [o, len]] of parts.entries()) {
      const data = pattern(len, i + 1);
      data.copy(want, o);
      await a.apply({ t: 'data', d: 0, p: 'big', o, data });
    }
    // a live write after the resync data: the page cache and the disk agree
    const live = pattern(100, 9);
    live.copy(want, 4096 * 3 + 7);
    await a.apply({ t: 'write', d: 0, p: 'big', o: 4096 * 3 + 7, data: live });
    await a.syncAll();
    expect(statSync(join(dir, 'big')).size).toBe(size);
    expect(readFileSync(join(dir, 'big')).equals(want)).toBe(true);
    await a.close();
  });

  it('a file created again under the same name gets the new file, not the old descriptor', async () => {
    const a = new Applier([dir]);
    await a.init();
    const before = readdirSync('/proc/self/fd').length;
    const u = process.getuid!();
    const g = process.getgid!();
    await a.apply({ t: 'ensure', d: 0, p: 'again', ty: 'f', m: 0o600, u, g, s: 1 << 20 });
    await a.apply({ t: 'data', d: 0, p: 'again', o: 0, data: pattern(1 << 20, 1) });
    await a.apply({ t: 'unlink', d: 0, p: 'again' });
    await a.apply({ t: 'create', d: 0, p: 'again', m: 0o600, u, g });
    await a.apply({ t: 'ensure', d: 0, p: 'again', ty: 'f', m: 0o600, u, g, s: 1 << 20 });
    const second = pattern(1 << 20, 2);
    await a.apply({ t: 'data', d: 0, p: 'again', o: 0, data: second });
    await a.syncAll();
    expect(readFileSync(join(dir, 'again')).equals(second)).toBe(true);
    await a.close();
    expect(readdirSync('/proc/self/fd').length).toBe(before);
  });

  it('joins consecutive zones into one range and cuts the last one at the file size', () => {
    expect(ranges([0, 1, 2, 5, 7, 8], 100, 850)).toEqual([
      [0, 300],
      [500, 600],
      [700, 850],
    ]);
    expect(ranges([3], 100, 250)).toEqual([]);
  });

  it('chunks: 4 MiB at most, a quarter of the window, an eighth of a second of a bandwidth cap, 4 KiB multiples', () => {
    expect(copyChunk(16 << 20, null)).toBe(4 << 20);
    expect(copyChunk(2 << 20, null)).toBe(512 << 10);
    expect(copyChunk(16 << 20, 32e6)).toBe(Math.floor(4e6 / 4096) * 4096);
    expect(copyChunk(64 << 10, 64 << 10)).toBe(64 << 10);
  });
});

describe('mirror stream decoder: large frames in reused, aligned buffers', () => {
  it('under any chunking, large data arrives whole, 4 KiB-aligned, in a buffer of about its size, and a released buffer takes the next frame', () => {
    const sizes = [300 * 1024, 4 << 20, 1000, (1 << 20) + 17];
    const frames = sizes.map((n, i) => ({ h: { t: 'data', q: i + 1, p: `f${i}`.repeat(i + 1) }, data: pattern(n, i) }));
    const wire = Buffer.concat(frames.map((f) => Buffer.concat(encodeOpPartsLike(f.h, f.data))));
    for (const cut of [1000, 4096, 65536, 1 << 20]) {
      const dec = new FrameDecoder();
      const got: Frame[] = [];
      let seed = cut;
      for (let at = 0; at < wire.length; ) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        const n = 1 + (seed % (cut * 2));
        got.push(...dec.push(wire.subarray(at, at + n)));
        at += n;
      }
      expect(got.map((f) => f.h.q)).toEqual([1, 2, 3, 4]);
      for (const [i, f] of got.entries()) {
        expect(f.data.equals(frames[i].data)).toBe(true);
        expect(f.h.p).toBe(frames[i].h.p);
        if (sizes[i] >= POOLED_DATA) expect(isAligned(f.data, POOL_ALIGN)).toBe(true);
        else expect(f.release).toBeUndefined();
      }
      // what a queued frame holds is about what it carries (a 1 MiB write does not hold a 4 MiB buffer)
      for (const f of got) if (f.release) expect(f.data.buffer.byteLength).toBeLessThan(f.data.length + 3 * POOL_ALIGN + 1024);
      // released: the next large frame reuses that buffer
      got[0].release!();
      const again = dec.push(Buffer.concat(encodeOpPartsLike({ t: 'data', q: 5, p: 'x' }, pattern(POOLED_DATA, 5))));
      expect(again[0].data.buffer).toBe(got[0].data.buffer);
      expect(again[0].data.equals(pattern(POOLED_DATA, 5))).toBe(true);
    }
  });
});

function encodeOpPartsLike(h: object, data: Buffer): Buffer[] {
  return [encodeFrameHead(h, data.length), data];
}
