import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeHeartbeat, encodeHeartbeat, type Heartbeat } from '../../node-service/src/heartbeat/packet.ts';

const key = Buffer.from('k'.repeat(32));
const hb: Heartbeat = { v: 1, cluster: 'c', module: 'm', node: 'node1', net: 0, counter: 42, state: 'PRIM', target: 'PRIM', gen: 3, epoch: 2, inSync: false, handover: false, swapRequest: false, isolated: false };

describe('heartbeat packets', () => {
  it('round-trips', () => {
    expect(decodeHeartbeat(encodeHeartbeat(hb, key), key)).toEqual({ ok: true, hb });
  });

  it('a packet signed with another secret is rejected as bad_mac', () => {
    expect(decodeHeartbeat(encodeHeartbeat(hb, Buffer.from('other')), key)).toEqual({ ok: false, reason: 'bad_mac' });
  });

  it('any flipped bit is detected', () => {
    const buf = encodeHeartbeat(hb, key);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: buf.length * 8 - 1 }), (bit) => {
        const b = Buffer.from(buf);
        b[bit >> 3] ^= 1 << (bit & 7);
        expect(decodeHeartbeat(b, key).ok).toBe(false);
      }),
    );
  });

  it('arbitrary datagrams never throw and are never accepted', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1600 }), (bytes) => {
        expect(decodeHeartbeat(Buffer.from(bytes), key).ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('a correctly signed body that is not a heartbeat is malformed, not accepted', () => {
    const evil = { ...hb, state: 'MASTER' } as unknown as Heartbeat;
    expect(decodeHeartbeat(encodeHeartbeat(evil, key), key)).toEqual({ ok: false, reason: 'malformed' });
  });
});
