import { describe, expect, it } from 'vitest';
import { decodeToPrimary, decodeToSecondary, encodeOp, encodeToPrimary, type Op } from '../../node-service/src/mirror/ops.ts';
import { FrameDecoder, FrameError, encodeFrame } from '../../node-service/src/mirror/protocol.ts';

const one = (buf: Buffer) => {
  const frames = new FrameDecoder().push(buf);
  expect(frames).toHaveLength(1);
  return frames[0];
};

describe('mirror replication protocol: one typed operation from the view to the applier', () => {
  const ops: Op[] = [
    { t: 'write', d: 0, p: 'a/b', o: 4096, data: Buffer.from('bytes') },
    { t: 'data', d: 1, p: 'big', o: 1 << 20, data: Buffer.alloc(1000, 7) },
    { t: 'truncate', d: 0, p: 'f', s: 10 },
    { t: 'create', d: 0, p: 'f', m: 0o644, u: 1000, g: 1000 },
    { t: 'mkdir', d: 0, p: 'dir', m: 0o2755, u: 0, g: 50 },
    { t: 'unlink', d: 0, p: 'f' },
    { t: 'rmdir', d: 0, p: 'dir' },
    { t: 'rename', d: 0, p: 'x', to: 'y/z' },
    { t: 'link', d: 0, p: 'new', to: 'old' },
    { t: 'symlink', d: 0, p: 'l', tg: '../elsewhere', u: 1, g: 2 },
    { t: 'chmod', d: 0, p: '', m: 0o750 },
    { t: 'chown', d: 0, p: 'f', u: 65534, g: 65534 },
    { t: 'utimens', d: 0, p: 'f', a: '1700000000123456789', mt: '-5' },
    { t: 'fallocate', d: 0, p: 'f', o: 0, l: 8192, mode: 3 },
    { t: 'setxattr', d: 0, p: 'f', n: 'user.k', fl: 1, v: Buffer.from([0, 1, 2]) },
    { t: 'removexattr', d: 0, p: 'f', n: 'user.k' },
    { t: 'fsync', d: 0, p: 'f', ds: true },
    { t: 'ensure', d: 0, p: 'f', ty: 'l', m: 0o777, u: 0, g: 0, s: 0, tg: 't' },
    { t: 'meta', d: 0, p: 'f', a: '1', mt: '2', x: { 'user.a': 'AAE=' } },
    { t: 'remove', d: 0, p: 'f' },
    { t: 'nop' },
    { t: 'base', id: 'b4b1c0de' },
    { t: 'synced', id: 'b4b1c0de' },
  ];

  it('every operation survives encode → frame → validate unchanged, with its sequence number', () => {
    ops.forEach((op, i) => {
      const m = decodeToSecondary(one(encodeOp(i + 1, op)));
      expect(m).toEqual({ t: 'op', q: i + 1, op });
    });
  });

  it('a malformed operation is refused with the field it gets wrong', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ t: 'write', q: 1, d: 0, p: '../x', o: 0 }, /path/],
      [{ t: 'write', q: 1, d: 0, p: 'x', o: -1 }, /field o/],
      [{ t: 'chmod', q: 1, d: 0, p: 'x', m: 0o17777 }, /field m/],
      [{ t: 'chown', q: 1, d: 0, p: 'x', u: 2 ** 32, g: 0 }, /field u/],
      [{ t: 'utimens', q: 1, d: 0, p: 'x', a: '1.5', mt: '0' }, /field a/],
      [{ t: 'fsync', q: 1, d: 0, p: 'x', ds: 'yes' }, /field ds/],
      [{ t: 'ensure', q: 1, d: 0, p: 'x', ty: 'b', m: 0, u: 0, g: 0, s: 0 }, /field ty/],
      [{ t: 'meta', q: 1, d: 0, p: 'x', a: '1', mt: '1', x: { 'a\0b': 'x' } }, /x\.name/],
      [{ t: 'list', q: 1, d: 0, p: 'x', n: [] }, /unknown operation/],
      [{ t: 'nop', q: 'one' }, /field q/],
      [{ t: 'rename', q: 1, d: 0, p: 'x' }, /path must be a string/],
    ];
    for (const [h, msg] of bad) expect(() => decodeToSecondary(one(encodeFrame(h))), JSON.stringify(h)).toThrow(msg);
    // an operation without bytes must not carry any
    expect(() => decodeToSecondary(one(encodeFrame({ t: 'unlink', q: 1, d: 0, p: 'x' }, Buffer.from('x'))))).toThrow(FrameError);
  });

  it('acknowledgements and listings from the secondary are validated too', () => {
    expect(decodeToPrimary(one(encodeToPrimary({ t: 'ack', q: 7, e: [[5, 'ENOSPC']] })))).toEqual({ t: 'ack', q: 7, e: [[5, 'ENOSPC']] });
    expect(decodeToPrimary(one(encodeToPrimary({ t: 'manifest', e: [{ k: '0:a', ty: 'f', m: 0o644, u: 0, g: 0, s: 1 }], end: true })))).toEqual({
      t: 'manifest',
      e: [{ k: '0:a', ty: 'f', m: 0o644, u: 0, g: 0, s: 1 }],
      end: true,
    });
    expect(() => decodeToPrimary(one(encodeFrame({ t: 'ack', q: -1 })))).toThrow(/field q/);
    expect(() => decodeToPrimary(one(encodeFrame({ t: 'ack', q: 1, e: [['x', 1]] })))).toThrow(/field e/);
    expect(() => decodeToPrimary(one(encodeFrame({ t: 'write', q: 1 })))).toThrow(/unexpected frame/);
  });
});
