import { isIP } from 'node:net';
import { z } from 'zod';
import { bandwidth, parseBytes } from './bandwidth.ts';
import { arbiterSchema } from './arbiter.ts';
import { duration } from './duration.ts';
import { parseCidr } from './net.ts';

// The raw shape of cluster.yaml. Keys marked "contract" in docs/ARCHITECTURE.md must keep their names;
// everything is strict so that a typo ("heartbeet") is an error rather than a silently ignored key.

const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be 1-63 letters, digits, "_", "." or "-", starting with a letter or digit');

const ipAddr = z.string().refine((s) => isIP(s) !== 0, (s) => ({ message: `"${s}" is not an IPv4 or IPv6 address` }));

const absPath = z.string().refine((s) => s.startsWith('/'), (s) => ({ message: `"${s}" must be an absolute path` }));

const hostPort = z.string().refine(
  (s) => /^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/.test(s) && Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535,
  (s) => ({ message: `"${s}" must be host:port` }),
);

/** a size in bytes: a number, or "16MiB" / "64MB" / "512KiB" */
const byteSize = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = typeof v === 'number' ? v : parseBytes(v);
  if (n === undefined || !Number.isSafeInteger(n) || n < 65536 || n > 1 << 30) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${v}" must be a size between 64KiB and 1GiB, e.g. 16MiB` });
    return z.NEVER;
  }
  return n;
});

/** a pattern relative to a replicated directory (picomatch syntax); without "/" it matches a name at any depth */
const dirPattern = z
  .string()
  .min(1)
  .refine((s) => !s.startsWith('/') && !s.split('/').includes('..'), (s) => ({ message: `"${s}" must be relative to the replicated directory, without "..": e.g. "*.tmp" or "cache/**"` }));

/** a replicated directory: its path, or its path with the parts left out of replication */
export const replicatedDir = z.union([
  absPath,
  z
    .object({
      path: absPath,
      /** never replicated: live changes, resyncs, verify and diff all skip these (and what is under them) */
      exclude: z.array(dirPattern).default([]),
      /** when given, only these (and the directories leading to them) are replicated */
      include: z.array(dirPattern).min(1).optional(),
    })
    .strict(),
]);
export type ReplicatedDir = z.output<typeof replicatedDir>;

/** where a replicated directory is, whichever form it was written in */
export function dirPath(d: ReplicatedDir): string {
  return typeof d === 'string' ? d : d.path;
}

const onFailure = z.enum(['restart', 'stopstart', 'wait', 'failover']);

const checkerBase = {
  name: z.string().optional(),
  interval: duration.default('5s'),
  timeout: duration.default('3s'),
  on_failure: onFailure.default('restart'),
  /** consecutive failures before the checker is down */
  failures: z.number().int().min(1).max(100).default(2),
};

export const checkerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('tcp'), target: hostPort, ...checkerBase }).strict(),
  z.object({ type: z.literal('ping'), target: ipAddr, ...checkerBase }).strict(),
  z.object({ type: z.literal('interface'), interface: z.string().min(1), ...checkerBase }).strict(),
  z.object({ type: z.literal('script'), command: z.string().min(1), ...checkerBase }).strict(),
  z
    .object({
      type: z.literal('process'),
      match: z.string().min(1),
      regex: z.boolean().default(false),
      at_least: z.number().int().min(0).default(1),
      at_most: z.number().int().min(1).optional(),
      max_restarts: z.number().int().min(1).default(3),
      restart_window: duration.default('60s'),
      ...checkerBase,
    })
    .strict(),
  z.object({ type: z.literal('vip'), ...checkerBase }).strict(),
]);

export const vipSchema = z
  .object({
    addr: z.string().refine((s) => parseCidr(s) !== undefined, (s) => ({
      message: `"${s}" must be an address with its prefix length, e.g. 198.18.0.100/24`,
    })),
    interface: z.string().min(1).max(15),
  })
  .strict();

export const farmRuleSchema = z
  .object({
    port: z.number().int().min(0).max(65535).optional(),
    proto: z.enum(['tcp', 'udp']).default('tcp'),
    balance: z.enum(['client_ip', 'client_session']).default('client_ip'),
  })
  .strict();

export const moduleSchema = z
  .object({
    name,
    mode: z.enum(['mirror', 'farm'], { errorMap: () => ({ message: 'must be "mirror" or "farm"' }) }),
    // ids pick the ports (contract/health.ts): up to 100 the heartbeat (8888-8987), replication (5600-5999)
    // and farm (4803-5102) ranges stay apart and below the API's 9010
    id: z.number().int().min(1).max(100),
    heartbeat: z
      .object({ pulse: duration.optional(), timeout: duration.optional() })
      .strict()
      .default({}),
    vip: z.array(vipSchema).default([]),
    replication: z
      .object({
        dirs: z.array(replicatedDir).min(1),
        send_timeout: duration.default('2s'),
        zone_size: z.number().int().min(4096).default(1 << 20),
        /** fsync: a change returns once made locally and queued; fsync/O_SYNC wait for the peer's sync. write: every change waits for the peer */
        ack: z.enum(['fsync', 'write'], { errorMap: () => ({ message: 'must be "fsync" or "write"' }) }).default('fsync'),
        /** unacknowledged bytes in flight to the secondary before writers wait (bytes, or "16MiB", "64MB") */
        window: byteSize.default('16MiB'),
        /** tls: the channel runs in TLS 1.3 keyed from the cluster secret; none: in clear (authenticated only), for a link already encrypted (IPsec, WireGuard) and for measuring the cost */
        encryption: z.enum(['tls', 'none'], { errorMap: () => ({ message: 'must be "tls" or "none"' }) }).default('tls'),
        /** resync copies at most this many bytes per second ("50MB/s"; null: unlimited); live changes are never throttled. `vigil resync-bandwidth` changes it live */
        resync_bandwidth: bandwidth.nullable().default(null),
      })
      .strict()
      .optional(),
    scripts_dir: z.string().optional(),
    scripts: z
      .object({ timeout: duration.default('30s'), stop_timeout: duration.default('10s') })
      .strict()
      .default({}),
    checkers: z.array(checkerSchema).default([]),
    default_primary: name.optional(),
    /** on: the in-sync secondary takes over a lost primary; off: it waits for an operator (`vigil failover on|off` overrides) */
    failover: z
      .union([z.boolean(), z.enum(['on', 'off'])], { errorMap: () => ({ message: 'must be on or off' }) })
      .transform((v) => v === true || v === 'on')
      .default(true),
    /** true: after a failover, the roles swap back once default_primary is back and in sync */
    swap_back: z.boolean().default(false),
    /** SafeKit's maxloop: more automatic failovers or restarts than `count` within `window` stop the module */
    max_failovers: z
      .object({ count: z.number().int().min(1).max(1000).default(3), window: duration.default('24h') })
      .strict()
      .default({}),
    /** what a failing start script leads to */
    on_start_failure: z.enum(['wait', 'stop', 'failover']).default('wait'),
    witness: z
      .object({
        ping: z.array(ipAddr).default([]),
        http: z.array(z.string().url()).default([]),
        /** how long a secondary that reaches a witness waits after the peer went silent: a cut-off primary steps down within it */
        grace: duration.default('700ms'),
      })
      .strict()
      .optional(),
    /** a lease on an external consensus store: serve as primary only while holding it (mirror only) */
    arbiter: arbiterSchema.optional(),
    arp: z
      .object({ count: z.number().int().min(0).max(100).default(5), interval: duration.default('200ms'), refresh: duration.optional() })
      .strict()
      .default({}),
    farm: z
      .object({
        rules: z.array(farmRuleSchema).default([]),
        power: z.record(z.number().int().min(1).max(100)).default({}),
      })
      .strict()
      .optional(),
    /** subset of the cluster nodes this module runs on (default: all); a mirror module needs exactly 2 */
    nodes: z.array(name).optional(),
    cloud_events: z.object({ url: z.string().url(), secret_file: absPath }).strict().optional(),
  })
  .strict();

export const nodeSchema = z.object({ name, addrs: z.array(ipAddr).min(1) }).strict();

export const clusterSchema = z
  .object({
    cluster: name,
    secret_file: z.string().min(1),
    /** a second secret accepted beside secret_file while the nodes change over to it (key rotation) */
    next_secret_file: z.string().min(1).optional(),
    state_dir: z.string().min(1).default('/var/lib/vigil'),
    api: z
      .object({
        port: z.number().int().min(1).max(65535).default(9010),
        admin_token_file: z.string().min(1),
        listen: z.array(ipAddr).optional(),
        /** more API tokens with their roles (admin_token_file is role admin); several entries per role are allowed */
        tokens: z.array(z.object({ role: z.enum(['monitor', 'control', 'admin']), file: z.string().min(1) }).strict()).default([]),
        /** HTTPS for the admin API and the console (ready.txt and /metrics stay readable over plain HTTP) */
        tls: z.object({ cert: z.string().min(1), key: z.string().min(1), ca: z.string().min(1).optional() }).strict().optional(),
      })
      .strict(),
    log: z.object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info') }).strict().default({}),
    nodes: z.array(nodeSchema).min(1),
    modules: z.array(moduleSchema).default([]),
  })
  .strict();

export type RawCluster = z.input<typeof clusterSchema>;
export type ParsedCluster = z.output<typeof clusterSchema>;
export type CheckerConfig = z.output<typeof checkerSchema>;
export type VipConfig = z.output<typeof vipSchema>;
export type FarmRule = z.output<typeof farmRuleSchema>;
