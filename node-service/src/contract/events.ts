/**
 * Signing of the state-change events a node pushes to the cloud function (POST /events), part of the
 * contract (docs/ARCHITECTURE.md "Cloud events"). The node service (cloud-events/poster.ts) and the
 * functions (functions/src/controller.ts) both import this file, so the two ends can never disagree
 * on the wire format.
 *
 * Wire format:
 *   body                       JSON of CloudEvent (below), UTF-8
 *   x-vigil-timestamp          milliseconds since the epoch when the request was signed
 *   x-vigil-signature          "v1=" + hex(HMAC-SHA256(secret, "v1." + timestamp + "." + body))
 *
 * The signature covers the timestamp, so a captured request cannot be re-stamped; the receiver rejects
 * timestamps outside a tolerance window and remembers event ids inside it (replay protection).
 * Pure: no clock is read here, callers pass `now`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { moduleStateSchema } from './states.ts';

export const SIGNATURE_HEADER = 'x-vigil-signature';
export const TIMESTAMP_HEADER = 'x-vigil-timestamp';
export const SIGNATURE_VERSION = 'v1';
/** how far a timestamp may be from the receiver's clock, either way */
export const DEFAULT_TOLERANCE_MS = 60_000;

export const cloudEventSchema = z
  .object({
    /** unique per event (random); the receiver's replay cache key */
    id: z.string().min(8).max(128),
    cluster: z.string().min(1).max(63),
    node: z.string().min(1).max(63),
    module: z.string().min(1).max(63),
    from: moduleStateSchema,
    to: moduleStateSchema,
    reason: z.string().max(1000).optional(),
    /** ms since the epoch when the node saw the transition (not when the request was sent) */
    at: z.number().int().nonnegative(),
    /** per-poster sequence number: lets the receiver order events of one node */
    seq: z.number().int().nonnegative(),
  })
  .strict();

export type CloudEvent = z.infer<typeof cloudEventSchema>;

/**
 * The key actually used: a secret file usually ends with a newline that `echo` or an editor added;
 * both ends strip trailing whitespace so `printf` and `echo` made files are the same secret.
 */
export function normalizeSecret(secret: Buffer | string): Buffer {
  const buf = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  let end = buf.length;
  while (end > 0 && (buf[end - 1] === 0x0a || buf[end - 1] === 0x0d || buf[end - 1] === 0x20 || buf[end - 1] === 0x09)) end--;
  if (end === 0) throw new Error('cloud events secret is empty');
  return buf.subarray(0, end);
}

function mac(secret: Buffer, timestamp: string, body: string): Buffer {
  return createHmac('sha256', normalizeSecret(secret)).update(`${SIGNATURE_VERSION}.${timestamp}.`).update(body, 'utf8').digest();
}

/** Headers to send with `body`, signed at `now` (ms). */
export function signEvent(secret: Buffer, body: string, now: number): Record<string, string> {
  const timestamp = String(Math.trunc(now));
  return {
    [TIMESTAMP_HEADER]: timestamp,
    [SIGNATURE_HEADER]: `${SIGNATURE_VERSION}=${mac(secret, timestamp, body).toString('hex')}`,
  };
}

/** The one answer to a request whose signature cannot be accepted, whatever the cause (unknown cluster too). */
export const BAD_SIGNATURE = 'bad signature (wrong secret, or the body was altered)';

export type VerifyResult =
  | { ok: true; timestamp: number }
  | { ok: false; status: 401; reason: string };

/**
 * Checks the signature and the freshness of a request against one secret or several (a rotation:
 * the old and the new one). Returns a reason meant for the HTTP answer: it never contains the secret
 * or the expected signature.
 */
export function verifySignature(
  secret: Buffer | readonly Buffer[],
  body: string,
  headers: { timestamp: string | undefined | null; signature: string | undefined | null },
  now: number,
  toleranceMs: number = DEFAULT_TOLERANCE_MS,
): VerifyResult {
  const { timestamp, signature } = headers;
  if (!signature) return { ok: false, status: 401, reason: `missing ${SIGNATURE_HEADER} header: events must be signed` };
  if (!timestamp) return { ok: false, status: 401, reason: `missing ${TIMESTAMP_HEADER} header` };
  if (!/^\d{1,16}$/.test(timestamp)) return { ok: false, status: 401, reason: `${TIMESTAMP_HEADER} must be milliseconds since the epoch` };
  const ts = Number(timestamp);
  if (Math.abs(now - ts) > toleranceMs) {
    return { ok: false, status: 401, reason: `stale or future timestamp: ${Math.round((now - ts) / 1000)} s from this clock (tolerance ${toleranceMs / 1000} s)` };
  }
  const m = /^v1=([0-9a-f]{64})$/.exec(signature.trim());
  if (!m) return { ok: false, status: 401, reason: `${SIGNATURE_HEADER} must be "v1=<64 hex digits>"` };
  const given = Buffer.from(m[1], 'hex');
  // every secret is tried (no early exit): during a rotation both the old and the new one are valid
  let match = false;
  for (const s of Array.isArray(secret) ? secret : [secret]) if (timingSafeEqual(given, mac(s, timestamp, body))) match = true;
  if (!match) return { ok: false, status: 401, reason: BAD_SIGNATURE };
  return { ok: true, timestamp: ts };
}
