import { createCipheriv, createDecipheriv } from 'node:crypto';
import { z } from 'zod';

/**
 * Heartbeat (and farm membership) datagram, sealed with AES-256-GCM:
 *
 *   "VGH2" | key id (4) | node name length (1) | node name | counter (u64 BE) | sealed JSON body | tag (16)
 *
 * Everything before the body is authenticated as associated data. The key is derived for this
 * purpose, cluster, module and sending node (secure/keyring.ts); the nonce is the sender's counter,
 * which only ever increases (across restarts too), so it never repeats under a key, and the receiver
 * drops any counter it has seen (replay). The clear header says which key and whose, nothing else:
 * states, generations and roles travel encrypted. A heartbeat is ~250 bytes, far below one MTU.
 */
const MAGIC = Buffer.from('VGH2');
const TAG_LEN = 16;
const KEY_ID_LEN = 4;
export const MAX_PACKET = 1400;

const states = z.enum(['STOP', 'WAIT', 'ALONE', 'PRIM', 'SECOND', 'UP']);

export const heartbeatSchema = z
  .object({
    v: z.literal(1),
    cluster: z.string().max(64),
    module: z.string().max(64),
    node: z.string().max(64),
    /** index of the heartbeat network this copy was sent on */
    net: z.number().int().min(0).max(15),
    /** strictly increasing per sender, across restarts: the replay guard */
    counter: z.number().int().nonnegative(),
    state: states,
    target: states,
    gen: z.number().int().nonnegative(),
    epoch: z.number().int().nonnegative(),
    inSync: z.boolean(),
    handover: z.boolean(),
    swapRequest: z.boolean(),
    isolated: z.boolean(),
  })
  .strict();

export type Heartbeat = z.infer<typeof heartbeatSchema>;

/** The key a datagram is sealed with: its id (carried in clear) and the 32-byte AES key. */
export interface SealKey {
  readonly id: Buffer;
  readonly key: Buffer;
}

const nonceOf = (counter: number) => {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(BigInt(counter), 4);
  return n;
};

export function encodeHeartbeat(hb: Heartbeat, seal: SealKey): Buffer {
  const node = Buffer.from(hb.node, 'utf8');
  const head = Buffer.alloc(4 + KEY_ID_LEN + 1 + node.length + 8);
  MAGIC.copy(head, 0);
  seal.id.copy(head, 4);
  head.writeUInt8(node.length, 8);
  node.copy(head, 9);
  head.writeBigUInt64BE(BigInt(hb.counter), 9 + node.length);
  const cipher = createCipheriv('aes-256-gcm', seal.key, nonceOf(hb.counter), { authTagLength: TAG_LEN });
  cipher.setAAD(head);
  const body = Buffer.concat([cipher.update(JSON.stringify(hb), 'utf8'), cipher.final()]);
  return Buffer.concat([head, body, cipher.getAuthTag()]);
}

export type DropReason = 'malformed' | 'bad_key' | 'bad_mac';
export type DecodeResult = { ok: true; hb: Heartbeat } | { ok: false; reason: DropReason; node?: string };

/**
 * Never throws: any datagram from the network is either an authentic heartbeat or a counted drop.
 * `keyFor` gives the key `node` seals with under `keyId`, or undefined when this node does not hold
 * that secret (a peer with the wrong key: `bad_key`).
 */
export function decodeHeartbeat(buf: Buffer, keyFor: (keyId: Buffer, node: string) => Buffer | undefined): DecodeResult {
  if (buf.length < 9 + 8 + TAG_LEN || buf.length > MAX_PACKET || !buf.subarray(0, 4).equals(MAGIC)) return { ok: false, reason: 'malformed' };
  const nodeLen = buf.readUInt8(8);
  const headLen = 9 + nodeLen + 8;
  if (nodeLen === 0 || nodeLen > 64 || buf.length < headLen + TAG_LEN + 2) return { ok: false, reason: 'malformed' };
  const node = buf.subarray(9, 9 + nodeLen).toString('utf8');
  const counter = buf.readBigUInt64BE(9 + nodeLen);
  if (counter > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, reason: 'malformed' };
  const key = keyFor(buf.subarray(4, 8), node);
  if (!key) return { ok: false, reason: 'bad_key', node };
  let plain: Buffer;
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonceOf(Number(counter)), { authTagLength: TAG_LEN });
    d.setAAD(buf.subarray(0, headLen));
    d.setAuthTag(buf.subarray(buf.length - TAG_LEN));
    plain = Buffer.concat([d.update(buf.subarray(headLen, buf.length - TAG_LEN)), d.final()]);
  } catch {
    return { ok: false, reason: 'bad_mac', node };
  }
  let json: unknown;
  try {
    json = JSON.parse(plain.toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const parsed = heartbeatSchema.safeParse(json);
  // the clear header and the sealed body must tell the same sender and counter
  if (!parsed.success || parsed.data.node !== node || parsed.data.counter !== Number(counter)) return { ok: false, reason: 'malformed' };
  return { ok: true, hb: parsed.data };
}
