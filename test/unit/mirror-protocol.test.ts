import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encodeFrame, FrameDecoder, FrameError, MAX_BODY_UNAUTH, authMac } from '../../node-service/src/mirror/protocol.ts';
import { checkRel } from '../../node-service/src/mirror/paths.ts';
import { Tracking, key } from '../../node-service/src/mirror/tracking.ts';

describe('mirror protocol', () => {
  it('frames survive any chunking', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ t: fc.string({ minLength: 1 }), x: fc.integer() }), { minLength: 1, maxLength: 5 }), fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: 1, max: 50 }), (headers, data, cut) => {
        const wire = Buffer.concat(headers.map((h) => encodeFrame(h, Buffer.from(data))));
        const dec = new FrameDecoder();
        const got = [];
        for (let i = 0; i < wire.length; i += cut) got.push(...dec.push(wire.subarray(i, i + cut)));
        expect(got.map((f) => f.h)).toEqual(headers);
        for (const f of got) expect(Buffer.compare(f.data, Buffer.from(data))).toBe(0);
      }),
    );
  });

  it('random bytes either decode to object headers or throw FrameError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (bytes) => {
        const dec = new FrameDecoder(MAX_BODY_UNAUTH);
        try {
          for (const f of dec.push(Buffer.from(bytes))) expect(typeof f.h.t).toBe('string');
        } catch (e) {
          expect(e).toBeInstanceOf(FrameError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('oversized frames are refused before allocation', () => {
    const dec = new FrameDecoder(MAX_BODY_UNAUTH);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(MAX_BODY_UNAUTH + 1);
    expect(() => dec.push(head)).toThrow(FrameError);
  });

  it('authentication MACs depend on role, module and both nonces', () => {
    const k = Buffer.from('k'.repeat(32));
    const base = authMac(k, 'P', 'm', 'a', 'b');
    expect(authMac(k, 'S', 'm', 'a', 'b')).not.toBe(base);
    expect(authMac(k, 'P', 'n', 'a', 'b')).not.toBe(base);
    expect(authMac(k, 'P', 'm', 'b', 'a')).not.toBe(base);
    expect(authMac(Buffer.from('x'.repeat(32)), 'P', 'm', 'a', 'b')).not.toBe(base);
  });
});

describe('mirror paths', () => {
  it('accepts only relative paths without dot components', () => {
    for (const ok of ['', 'a', 'a/b', 'a.b/..c', '...']) expect(checkRel(ok)).toBe(ok);
    for (const bad of ['/a', '..', 'a/..', '../a', 'a//b', './a', 'a/', 'a\0b', 7, null]) expect(() => checkRel(bad)).toThrow(FrameError);
  });
  it('no accepted path has a .. component', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          const r = checkRel(s);
          expect(r.split('/')).not.toContain('..');
          expect(r.startsWith('/')).toBe(false);
        } catch (e) {
          expect(e).toBeInstanceOf(FrameError);
        }
      }),
    );
  });
});

describe('mirror tracking', () => {
  it('marks zones, survives a snapshot and re-queues unacknowledged copies', () => {
    const t = new Tracking(1 << 20);
    t.markZones(key(0, 'f'), (1 << 20) - 1, 2); // spans zones 0 and 1
    t.markTruncate(key(0, 'g'), 5000);
    t.markAll(key(0, 'h'));
    const copy = new Tracking(1 << 20);
    copy.restore(JSON.parse(JSON.stringify(t.snapshot())));
    expect([...copy.entries.get(key(0, 'f'))!.zones!]).toEqual([0, 1]);
    expect(copy.entries.get(key(0, 'g'))!.from).toBe(5000);
    const [k, d] = copy.take()!;
    expect(k).toBe(key(0, 'f'));
    copy.requeueInflight();
    expect(copy.entries.get(k)).toEqual(expect.objectContaining({ zones: d.zones }));
    expect(copy.bytesToCopy((x) => (x === key(0, 'f') ? 3 << 20 : null))).toBe(2 << 20);
  });
});

describe('mirror applier', () => {
  it('refuses operations that would remove, replace or rename the replicated directory itself', async () => {
    const { mkdtempSync, existsSync } = await import('node:fs');
    const { Applier } = await import('../../node-service/src/mirror/apply.ts');
    const root = mkdtempSync('/tmp/vgm-unit-');
    const a = new Applier([root]);
    await a.init();
    for (const h of [
      { t: 'rmdir', d: 0, p: '' },
      { t: 'remove', d: 0, p: '' },
      { t: 'unlink', d: 0, p: '' },
      { t: 'rename', d: 0, p: '', to: 'x' },
      { t: 'rename', d: 0, p: 'x', to: '' },
      { t: 'write', d: 0, p: '', o: 0, data: Buffer.alloc(1) },
      { t: 'symlink', d: 0, p: '', tg: '/', u: 0, g: 0 },
    ] as const) {
      await expect(a.apply(h)).rejects.toThrow();
    }
    expect(existsSync(root)).toBe(true);
    await a.apply({ t: 'chmod', d: 0, p: '', m: 0o750 });
    await a.close();
    const { rmSync } = await import('node:fs');
    rmSync(root, { recursive: true, force: true });
  });
});
