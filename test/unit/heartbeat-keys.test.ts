import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Secret } from '../../node-service/src/config/secret.ts';
import { decodeHeartbeat, encodeHeartbeat, type Heartbeat } from '../../node-service/src/heartbeat/packet.ts';
import { datagramKeys, KeyRing } from '../../node-service/src/secure/keyring.ts';

const S1 = 'first-secret-first-secret-first!';
const S2 = 'second-secret-second-secret-2nd!';
const ring = (cur: string, next?: string) => new KeyRing(new Secret(Buffer.from(cur)), next === undefined ? undefined : new Secret(Buffer.from(next)));
const hb: Heartbeat = { v: 1, cluster: 'prod', module: 'db', node: 'node1', net: 0, counter: 1_700_000_000_000_000, state: 'PRIM', target: 'PRIM', gen: 7, epoch: 7, inSync: true, handover: false, swapRequest: false, isolated: false };

const roundTrip = (from: KeyRing, to: KeyRing, purposes: ['heartbeat' | 'farm', 'heartbeat' | 'farm'] = ['heartbeat', 'heartbeat']) => {
  const tx = datagramKeys(from, purposes[0], 'prod', 'db');
  const rx = datagramKeys(to, purposes[1], 'prod', 'db');
  return decodeHeartbeat(encodeHeartbeat(hb, tx.seal('node1')), (id, node) => rx.open(id, node));
};

describe('datagram keys', () => {
  it('nothing of the heartbeat is readable on the wire: states, cluster, module, secret', () => {
    const wire = encodeHeartbeat(hb, datagramKeys(ring(S1), 'heartbeat', 'prod', 'db').seal('node1')).toString('latin1');
    for (const clear of ['PRIM', 'prod', '"db"', 'inSync', 'gen', S1, Buffer.from(S1).toString('base64')]) expect(wire).not.toContain(clear);
  });

  it('each purpose has its own key: a heartbeat never opens as farm membership, nor a module as another', () => {
    expect(roundTrip(ring(S1), ring(S1))).toMatchObject({ ok: true });
    expect(roundTrip(ring(S1), ring(S1), ['farm', 'heartbeat'])).toEqual({ ok: false, reason: 'bad_mac', node: 'node1' });
    const tx = datagramKeys(ring(S1), 'heartbeat', 'prod', 'web');
    const rx = datagramKeys(ring(S1), 'heartbeat', 'prod', 'db');
    expect(decodeHeartbeat(encodeHeartbeat(hb, tx.seal('node1')), (id, n) => rx.open(id, n)).ok).toBe(false);
  });

  it('a sender cannot pass as another node: the key is derived for the sender named in the header', () => {
    const keys = datagramKeys(ring(S1), 'heartbeat', 'prod', 'db');
    const forged = encodeHeartbeat({ ...hb, node: 'node2' }, keys.seal('node1'));
    expect(decodeHeartbeat(forged, (id, n) => keys.open(id, n))).toEqual({ ok: false, reason: 'bad_mac', node: 'node2' });
  });

  it('rotation: a node with next_secret_file accepts both secrets and sends with secret_file', () => {
    const changing = ring(S1, S2);
    expect(roundTrip(ring(S1), changing)).toMatchObject({ ok: true });
    expect(roundTrip(ring(S2), changing)).toMatchObject({ ok: true });
    expect(roundTrip(ring(S2, S1), ring(S1, S2))).toMatchObject({ ok: true });
    expect(roundTrip(ring(S2), ring(S1))).toMatchObject({ ok: false, reason: 'bad_key' });
    expect(changing.status()).toEqual({ sending: changing.sending.fingerprint, accepting: [ring(S1).sending.fingerprint, ring(S2).sending.fingerprint] });
  });

  describe('reload', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vge-keys-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const file = (name: string, text: string, mode = 0o600) => {
      const f = join(dir, name);
      writeFileSync(f, text);
      chmodSync(f, mode);
      return f;
    };

    it('swaps both keys at once, or changes nothing and names the bad file', () => {
      const r = KeyRing.fromFiles({ secret_file: file('a', S1) });
      const before = r.status();
      expect(() => r.reload({ secret_file: file('a', S1), next_secret_file: file('b', S2, 0o644) })).toThrow(/next_secret_file: .*\/b is world-readable: chmod 600/);
      expect(() => r.reload({ secret_file: file('a', S1), next_secret_file: join(dir, 'missing') })).toThrow(/next_secret_file: cannot read .*missing \(ENOENT\)/);
      expect(() => r.reload({ secret_file: file('c', 'short') })).toThrow(/secret_file: .*holds 5 bytes; use at least 16/);
      expect(r.status()).toEqual(before);
      const after = r.reload({ secret_file: file('a', S1), next_secret_file: file('b', S2) });
      expect(after.accepting).toHaveLength(2);
    });

    it('key ids are not the secret and do not show it', () => {
      const r = ring(S1);
      expect(r.sending.fingerprint).toMatch(/^[0-9a-f]{8}$/);
      expect(JSON.stringify({ k: r.sending })).not.toContain(S1);
    });
  });
});
