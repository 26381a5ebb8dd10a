import { z } from 'zod';
import { duration } from './duration.ts';

// The `arbiter:` block of a mirror module (contract: docs/ARCHITECTURE.md "Arbiter"). One lease per
// module on a store the operator already runs; the names follow what Patroni users know.

const file = z.string().min(1);

/** TLS files for etcd's client port (client certificate authentication when cert and key are given). */
const etcdTls = z.object({ ca: file.optional(), cert: file.optional(), key: file.optional() }).strict();

/** A lease ttl a store can honour, in ms: etcd refuses leases under ~1.5 s (its election timeout). */
const ttl = (def: string, min: number, max: number, why: string) =>
  duration.default(def).refine((ms) => ms >= min && ms <= max, { message: `must be between ${min / 1000}s and ${max / 1000}s (${why})` });

export const arbiterSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('etcd'),
      endpoints: z.array(z.string().regex(/^https?:\/\/[^/\s]+\/?$/, 'must be an etcd client URL, e.g. http://198.18.0.50:2379')).min(1),
      ttl: ttl('3s', 2000, 60_000, "etcd's minimum lease is its election timeout; the node steps down ttl/3 before expiry"),
      key_prefix: z.string().regex(/^\/[^\s]*$/, 'must start with "/", e.g. /vigil').default('/vigil'),
      tls: etcdTls.optional(),
      /** etcd user (RBAC); the password is read from password_file */
      username: z.string().min(1).optional(),
      password_file: file.optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('aws-dynamodb'),
      table: z.string().regex(/^[A-Za-z0-9_.-]{3,255}$/, 'must be a DynamoDB table name (3-255 letters, digits, "_", "-", ".")'),
      region: z.string().min(1).optional(),
      /** a DynamoDB-compatible endpoint (DynamoDB Local, a VPC endpoint); default: the region's */
      endpoint: z.string().url().optional(),
      ttl: ttl('10s', 3000, 300_000, 'a takeover needs ttl plus one renewal'),
    })
    .strict(),
  z
    .object({
      type: z.literal('azure-blob'),
      account_url: z.string().url(),
      container: z.string().regex(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/, 'must be an Azure container name (3-63 lowercase letters, digits and single dashes)'),
      /** the storage account key (a file holding it); without it the daemon uses managed identity */
      account_key_file: file.optional(),
      ttl: ttl('15s', 15_000, 60_000, 'Azure blob leases last 15 to 60 seconds'),
    })
    .strict(),
  z
    .object({
      type: z.literal('gcs'),
      bucket: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/, 'must be a Cloud Storage bucket name'),
      ttl: ttl('10s', 6000, 300_000, 'renewals come every ttl/6 and Cloud Storage takes one write a second per object'),
    })
    .strict(),
]);

export type ArbiterConfig = z.output<typeof arbiterSchema>;
