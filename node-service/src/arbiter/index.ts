import type { ArbiterConfig } from '../config/arbiter.ts';
import type { LeaseAnswer } from '../core/lease.ts';
import type { Logger } from '../log/logger.ts';

/**
 * One lease per mirror module on an external store (issue 16). The core (core/lease.ts) decides when
 * to claim and until when an answer lets the node serve; a store only answers, atomically:
 *   - `held`: the lease is ours now (granted, or renewed), valid at the store for ttl from `sentAt`;
 *   - `taken`: another node holds a lease that has not expired;
 *   - `fenced`: the lease is free, but the last holder recorded a newer data generation than ours;
 *   - `unreachable`: no answer within ttl/3 (or an error that says nothing about the lease).
 * The record carries {node, gen}; the fence (the highest generation ever recorded) outlives the lease.
 */
export interface LeaseStore {
  /** "etcd http://198.18.0.50:2379" (never credentials) */
  readonly describe: string;
  /** acquire (free or expired, fence not newer than gen unless force) or renew the lease we hold,
   *  recording gen; never throws */
  claim(gen: number, force: boolean): Promise<LeaseAnswer>;
  /** gives the lease up at once so the peer need not wait for it to expire (best effort) */
  release(): Promise<void>;
  close(): Promise<void>;
}

export interface ArbiterContext {
  readonly cluster: string;
  readonly module: string;
  readonly node: string;
  readonly log: Logger;
  /** the core's monotonic clock (ms): `sentAt` is read on it */
  readonly now: () => number;
}

/** What a lease record says. */
export interface LeaseRecord {
  readonly node: string;
  readonly gen: number;
}

/** Store answers are bounded: a claim gets ttl/3, so two failed renewals still end before the margin. */
export const claimTimeoutMs = (ttlMs: number): number => Math.max(300, Math.round(ttlMs / 3));

/** The lease's name at the store: one per cluster and module, under the configured prefix. */
export function leaseName(ctx: Pick<ArbiterContext, 'cluster' | 'module'>): string {
  return `${ctx.cluster}/${ctx.module}`;
}

export function parseRecord(text: string | undefined): LeaseRecord | undefined {
  if (!text) return undefined;
  try {
    const r = JSON.parse(text) as Partial<LeaseRecord>;
    return typeof r.node === 'string' && Number.isSafeInteger(r.gen) ? { node: r.node, gen: r.gen! } : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves to `onTimeout()` when `p` has not settled within ms (p keeps running; its result is dropped). */
export function within<T>(p: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** A claim bounded by the store's answer time: an error answers `unreachable` with `describe(e)`, silence with the time waited. */
export function answerWithin(attempt: Promise<LeaseAnswer>, sentAt: number, ms: number, describe: (e: Error) => string): Promise<LeaseAnswer> {
  const unreachable = (reason: string): LeaseAnswer => ({ outcome: 'unreachable', sentAt, reason });
  return within(attempt.catch((e: Error) => unreachable(describe(e))), ms, () => unreachable(`no answer within ${ms} ms`));
}

/**
 * The adapter for the configured store, usable at once: the store's client (and, for the cloud
 * stores, its SDK) loads on first use, and a store that cannot load answers `unreachable` with why.
 */
export function createArbiter(cfg: ArbiterConfig, ctx: ArbiterContext): LeaseStore {
  const store = load(cfg, ctx).catch((e: Error & { code?: string }) => {
    if (e.code !== 'ERR_MODULE_NOT_FOUND' || cfg.type === 'etcd') throw e;
    // the cloud SDKs are optional peers: a node of another cloud or on-prem does not carry them
    throw new Error(`the ${cfg.type} arbiter needs ${SDK_PACKAGES[cfg.type].join(' and ')} beside Vigil: npm install --prefix "$(npm root -g)/vigil" ${SDK_PACKAGES[cfg.type].join(' ')}`);
  });
  store.catch((e: Error) => ctx.log.error({ err: e.message }, `arbiter ${cfg.type} cannot start: ${e.message}`));
  return {
    describe: cfg.type,
    claim: (gen, force) => store.then((s) => s.claim(gen, force)).catch((e: Error) => ({ outcome: 'unreachable' as const, sentAt: ctx.now(), reason: `${cfg.type} client: ${e.message}` })),
    release: () => store.then((s) => s.release()).catch(() => undefined),
    close: () => store.then((s) => s.close()).catch(() => undefined),
  };
}

/** The npm packages a cloud store's adapter loads (optional peer dependencies of Vigil). */
export const SDK_PACKAGES: Readonly<Record<Exclude<ArbiterConfig['type'], 'etcd'>, readonly string[]>> = {
  'aws-dynamodb': ['@aws-sdk/client-dynamodb@^3'],
  'azure-blob': ['@azure/storage-blob@^12', '@azure/identity@^4'],
  gcs: ['@google-cloud/storage@^7'],
};

/** Azure's default credential chain (managed identity on a VM, environment, CLI login) */
async function managedIdentity() {
  return new (await import('@azure/identity')).DefaultAzureCredential();
}

async function load(cfg: ArbiterConfig, ctx: ArbiterContext): Promise<LeaseStore> {
  switch (cfg.type) {
    case 'etcd':
      return new (await import('./etcd.ts')).EtcdLeaseStore(cfg, ctx);
    case 'aws-dynamodb':
      return new (await import('./aws-dynamodb.ts')).DynamoLeaseStore(cfg, ctx);
    case 'azure-blob':
      return new (await import('./azure-blob.ts')).AzureBlobLeaseStore(cfg, ctx, cfg.account_key_file ? undefined : await managedIdentity());
    case 'gcs':
      return new (await import('./gcs.ts')).GcsLeaseStore(cfg, ctx);
  }
}
