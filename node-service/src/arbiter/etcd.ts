import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions } from 'etcd3';
import type { ArbiterConfig } from '../config/arbiter.ts';
import type { LeaseAnswer } from '../core/lease.ts';
import { answerWithin, type ArbiterContext, claimTimeoutMs, leaseName, type LeaseStore, parseRecord, within } from './index.ts';

type EtcdConfig = Extract<ArbiterConfig, { type: 'etcd' }>;

/**
 * The lease on etcd's v3 API, as Patroni keeps its leader key: an etcd lease of `ttl` (whole
 * seconds, rounded up: the store may keep it longer than we count, never shorter) and a
 * transaction on one key, `<key_prefix>/<cluster>/<module>/leader` = {node, gen}, attached to it;
 * etcd deletes the key when the lease expires. Beside it `<...>/fence` holds the highest data
 * generation a holder recorded, and stays: a claim is granted only in the transaction that finds
 * the leader key absent and the fence unchanged since it was read (and not newer than our generation).
 */
export class EtcdLeaseStore implements LeaseStore {
  readonly describe: string;
  private readonly client: Etcd3;
  private readonly leaderKey: Buffer;
  private readonly fenceKey: Buffer;
  private readonly ttlS: number;
  private readonly timeoutMs: number;
  private readonly perCallMs: number;
  /** the etcd lease we were granted, while we may still hold it */
  private leaseId?: string;

  constructor(
    cfg: EtcdConfig,
    private readonly ctx: ArbiterContext,
  ) {
    const prefix = `${cfg.key_prefix.replace(/\/+$/, '')}/${leaseName(ctx)}`;
    this.leaderKey = Buffer.from(`${prefix}/leader`);
    this.fenceKey = Buffer.from(`${prefix}/fence`);
    this.ttlS = Math.ceil(cfg.ttl / 1000);
    this.timeoutMs = claimTimeoutMs(cfg.ttl);
    this.describe = `etcd ${cfg.endpoints.join(',')} key ${prefix}/leader`;
    // Each call gets a third of the claim's time, so the client's retries reach another endpoint
    // when one member is cut off (a deadline is a recoverable error: the next try picks another host).
    const perCall = Math.max(100, Math.floor(this.timeoutMs / 3));
    this.perCallMs = perCall;
    const opts: IOptions = {
      hosts: [...cfg.endpoints],
      dialTimeout: perCall,
      defaultCallOptions: (c) => (c.isStream ? {} : { deadline: Date.now() + perCall }),
    };
    if (cfg.tls) {
      const read = (f: string | undefined) => (f === undefined ? undefined : readFileSync(f));
      // without a ca, the system's roots (gRPC's createSsl with no root certificate)
      opts.credentials = { rootCertificate: read(cfg.tls.ca) as Buffer, privateKey: read(cfg.tls.key), certChain: read(cfg.tls.cert) };
    }
    if (cfg.username && cfg.password_file) opts.auth = { username: cfg.username, password: readFileSync(cfg.password_file, 'utf8').trim() };
    this.client = new Etcd3(opts);
  }

  claim(gen: number, force: boolean): Promise<LeaseAnswer> {
    const sentAt = this.ctx.now();
    const attempt = (this.leaseId ? this.renew(this.leaseId, gen) : Promise.resolve(undefined)).then((renewed) => renewed ?? this.acquire(gen, force));
    return answerWithin(attempt, sentAt, this.timeoutMs, describeError);
  }

  /** Keeps our etcd lease alive and records our generation; undefined when the lease is no longer ours. */
  private async renew(id: string, gen: number): Promise<LeaseAnswer | undefined> {
    const sentAt = this.ctx.now();
    if ((await this.keepAlive(id)) > 0) {
      const t = await this.client.kv.txn({
        compare: [{ key: this.leaderKey, target: 'Lease', result: 'Equal', lease: id }],
        success: this.puts(id, gen, gen),
      });
      if (t.succeeded) return { outcome: 'held', sentAt };
      // the key is gone or another's (deleted by hand): our lease protects nothing, give it up
      await this.client.leaseClient.leaseRevoke({ ID: id }).catch(() => undefined);
    }
    this.leaseId = undefined;
    return undefined;
  }

  private async acquire(gen: number, force: boolean): Promise<LeaseAnswer> {
    const seen = await this.client.kv.txn({ success: [{ request_range: { key: this.leaderKey } }, { request_range: { key: this.fenceKey } }] });
    const leader = seen.responses[0].response_range.kvs[0];
    const fenceKv = seen.responses[1].response_range.kvs[0];
    const fence = fenceKv ? Number(fenceKv.value.toString()) || 0 : 0;
    if (leader) {
      const rec = parseRecord(leader.value.toString());
      return { outcome: 'taken', sentAt: this.ctx.now(), holder: rec?.node ?? 'an unknown holder', gen: rec?.gen };
    }
    if (!force && fence > gen) return { outcome: 'fenced', sentAt: this.ctx.now(), gen: fence };
    const sentAt = this.ctx.now();
    const { ID: id } = await this.client.leaseClient.leaseGrant({ TTL: this.ttlS, ID: 0 });
    this.leaseId = id;
    const t = await this.client.kv.txn({
      compare: [
        { key: this.leaderKey, target: 'Create', result: 'Equal', create_revision: 0 },
        { key: this.fenceKey, target: 'Mod', result: 'Equal', mod_revision: fenceKv?.mod_revision ?? 0 },
      ],
      success: this.puts(id, gen, force ? gen : Math.max(fence, gen)),
      failure: [{ request_range: { key: this.leaderKey } }],
    });
    if (t.succeeded) return { outcome: 'held', sentAt };
    // another node got there between our read and our write
    this.leaseId = undefined;
    await this.client.leaseClient.leaseRevoke({ ID: id }).catch(() => undefined);
    const rec = parseRecord(t.responses[0]?.response_range.kvs[0]?.value.toString());
    return { outcome: 'taken', sentAt, holder: rec?.node ?? 'another node', gen: rec?.gen };
  }

  private puts(id: string, gen: number, fence: number) {
    return [
      { request_put: { key: this.leaderKey, value: Buffer.from(JSON.stringify({ node: this.ctx.node, gen })), lease: id } },
      { request_put: { key: this.fenceKey, value: Buffer.from(String(fence)) } },
    ];
  }

  /**
   * One keep-alive: the remaining TTL etcd answers (0: expired or revoked). A keep-alive is a stream,
   * which the client's retries do not cover: a stream opened to a member that was just cut off would
   * hang, so each try gets a deadline and the next one goes to another member (the failed one is
   * marked, and its circuit opens).
   */
  private async keepAlive(id: string): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.keepAliveOnce(id);
      } catch (e) {
        if (attempt >= 3) throw e;
      }
    }
  }

  private async keepAliveOnce(id: string): Promise<number> {
    const stream = await this.client.leaseClient.leaseKeepAlive({ deadline: Date.now() + this.perCallMs });
    try {
      return await new Promise<number>((resolve, reject) => {
        stream.on('data', (r: { TTL: string }) => resolve(Number(r.TTL)));
        stream.on('error', reject);
        stream.write({ ID: id });
      });
    } finally {
      stream.end();
    }
  }

  async release(): Promise<void> {
    const id = this.leaseId;
    this.leaseId = undefined;
    if (id) await within(this.client.leaseClient.leaseRevoke({ ID: id }).then(() => undefined), this.timeoutMs, () => undefined).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

function describeError(e: Error): string {
  if (/circuit breaker is open/.test(e.message)) return 'every etcd endpoint failed its last calls (the client tries them again within seconds)';
  // gRPC messages carry the endpoint but never credentials
  return (e.message || e.name).split('\n')[0].slice(0, 200);
}
