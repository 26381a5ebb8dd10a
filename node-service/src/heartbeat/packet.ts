import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

/**
 * Heartbeat datagram: "VGHB" | u16 body length | JSON body | HMAC-SHA256(secret, everything before).
 * JSON keeps the format readable in a capture; a heartbeat is ~200 bytes, far below one MTU.
 */
const MAGIC = Buffer.from('VGHB');
const MAC_LEN = 32;
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

export function encodeHeartbeat(hb: Heartbeat, key: Buffer): Buffer {
  const body = Buffer.from(JSON.stringify(hb));
  const head = Buffer.alloc(6);
  MAGIC.copy(head, 0);
  head.writeUInt16BE(body.length, 4);
  const signed = Buffer.concat([head, body]);
  return Buffer.concat([signed, createHmac('sha256', key).update(signed).digest()]);
}

export type DecodeResult = { ok: true; hb: Heartbeat } | { ok: false; reason: 'malformed' | 'bad_mac' };

/** Never throws: any datagram from the network is either a verified heartbeat or a counted drop. */
export function decodeHeartbeat(buf: Buffer, key: Buffer): DecodeResult {
  if (buf.length < 6 + MAC_LEN || buf.length > MAX_PACKET || !buf.subarray(0, 4).equals(MAGIC)) return { ok: false, reason: 'malformed' };
  const len = buf.readUInt16BE(4);
  if (6 + len + MAC_LEN !== buf.length) return { ok: false, reason: 'malformed' };
  const signed = buf.subarray(0, 6 + len);
  const mac = buf.subarray(6 + len);
  const expected = createHmac('sha256', key).update(signed).digest();
  if (!timingSafeEqual(mac, expected)) return { ok: false, reason: 'bad_mac' };
  let json: unknown;
  try {
    json = JSON.parse(signed.subarray(6).toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const parsed = heartbeatSchema.safeParse(json);
  return parsed.success ? { ok: true, hb: parsed.data } : { ok: false, reason: 'malformed' };
}
