/**
 * Cloud events, node side. The daemon creates one poster per module that has
 * `cloud_events: { url, secret_file }` and calls publish() on every state transition of that module:
 *
 *   import { createCloudEventPoster, readCloudEventSecret } from '../cloud-events/index.ts';
 *   const poster = createCloudEventPoster({ url: m.cloud_events.url, secret: readCloudEventSecret(m.cloud_events.secret_file),
 *                                           cluster: cfg.cluster, node: self.name, log });
 *   poster.publish({ module: m.name, from: 'SECOND', to: 'ALONE', reason });   // never blocks, never throws
 *   await poster.close();                                                    // on shutdown
 */
import { readFileSync } from 'node:fs';
import { normalizeSecret } from '../contract/events.ts';

export { createCloudEventPoster, redactUrl, type CloudEventInput, type CloudEventPoster, type CloudEventPosterOptions, type PosterLogger } from './poster.ts';
export { signEvent, verifySignature, normalizeSecret, cloudEventSchema, SIGNATURE_HEADER, TIMESTAMP_HEADER, type CloudEvent } from '../contract/events.ts';

/** Reads a cloud_events.secret_file; throws with the path (never the contents) when it is unusable. */
export function readCloudEventSecret(path: string): Buffer {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new Error(`cloud_events.secret_file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let key: Buffer;
  try {
    key = normalizeSecret(buf);
  } catch {
    throw new Error(`cloud_events.secret_file ${path}: file is empty`);
  }
  if (key.length < 16) throw new Error(`cloud_events.secret_file ${path}: secret shorter than 16 bytes`);
  return key;
}
