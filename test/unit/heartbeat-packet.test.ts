import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../node-service/src/config/secret.ts';
import { decodeHeartbeat, encodeHeartbeat, type Heartbeat } from '../../node-service/src/heartbeat/packet.ts';
import { datagramKeys, KeyRing } from '../../node-service/src/secure/keyring.ts';

const ring = new KeyRing(new Secret(Buffer.from('k'.repeat(32))));
const keys = datagramKeys(ring, 'heartbeat', 'c', 'm');
const open = (id: Buffer, node: string) => keys.open(id, node);
const hb: Heartbeat = { v: 1, cluster: 'c', module: 'm', node: 'node1', net: 0, counter: 42, state: 'PRIM', target: 'PRIM', gen: 3, epoch: 2, inSync: false, handover: false, swapRequest: false, isolated: false };

describe('heartbeat packets', () => {
  it('round-trips', () => {
    expect(decodeHeartbeat(encodeHeartbeat(hb, keys.seal('node1')), open)).toEqual({ ok: true, hb });
  });

  it('a packet sealed with another secret is refused as bad_key, naming the claimed sender', () => {
    const other = datagramKeys(new KeyRing(new Secret(Buffer.from('o'.repeat(32)))), 'heartbeat', 'c', 'm');
    expect(decodeHeartbeat(encodeHeartbeat(hb, other.seal('node1')), open)).toEqual({ ok: false, reason: 'bad_key', node: 'node1' });
  });

  it('any flipped bit is detected', () => {
    const buf = encodeHeartbeat(hb, keys.seal('node1'));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: buf.length * 8 - 1 }), (bit) => {
        const b = Buffer.from(buf);
        b[bit >> 3] ^= 1 << (bit & 7);
        expect(decodeHeartbeat(b, open).ok).toBe(false);
      }),
    );
  });

  it('arbitrary datagrams never throw and are never accepted', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1600 }), (bytes) => {
        expect(decodeHeartbeat(Buffer.from(bytes), open).ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('a correctly sealed body that is not a heartbeat is malformed, not accepted', () => {
    const evil = { ...hb, state: 'MASTER' } as unknown as Heartbeat;
    expect(decodeHeartbeat(encodeHeartbeat(evil, keys.seal('node1')), open)).toEqual({ ok: false, reason: 'malformed' });
  });
});
