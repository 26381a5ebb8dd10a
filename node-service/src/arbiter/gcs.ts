import { type File, Storage } from '@google-cloud/storage';
import type { ArbiterConfig } from '../config/arbiter.ts';
import type { LeaseAnswer } from '../core/lease.ts';
import { answerWithin, type ArbiterContext, claimTimeoutMs, leaseName, type LeaseStore, within } from './index.ts';

type GcsConfig = Extract<ArbiterConfig, { type: 'gcs' }>;

/**
 * The lease as one Cloud Storage object, `<bucket>/<cluster>/<module>.lease`, its custom metadata
 * {node, gen, fence}. Every write is a new object generation made with a precondition: create with
 * ifGenerationMatch=0, renew with ifGenerationMatch=ours, take with ifGenerationMatch=the one seen.
 * Cloud Storage keeps no lease time, so a contender takes over only once it has seen the same
 * generation for `ttl` on its own clock (as with DynamoDB: arbiter/aws-dynamodb.ts says why that is
 * never before the holder's deadline). Credentials: Application Default Credentials.
 */
export class GcsLeaseStore implements LeaseStore {
  readonly describe: string;
  private readonly file: File;
  private readonly timeoutMs: number;
  private mine?: string;
  private seen?: { readonly generation: string; readonly at: number };

  constructor(
    private readonly cfg: GcsConfig,
    private readonly ctx: ArbiterContext,
    /** a Cloud Storage emulator's address (tests); none: Google's, with Application Default Credentials */
    apiEndpoint?: string,
  ) {
    this.timeoutMs = claimTimeoutMs(cfg.ttl);
    // no retry inside a claim: the next renewal is the retry, and a claim must answer within its time
    const s = new Storage({ apiEndpoint, retryOptions: { autoRetry: false } });
    this.file = s.bucket(cfg.bucket).file(`${leaseName(ctx)}.lease`);
    this.describe = `gcs gs://${cfg.bucket}/${leaseName(ctx)}.lease`;
  }

  claim(gen: number, force: boolean): Promise<LeaseAnswer> {
    const sentAt = this.ctx.now();
    return answerWithin(this.attempt(gen, force, sentAt), sentAt, this.timeoutMs, describeError);
  }

  private async attempt(gen: number, force: boolean, sentAt: number): Promise<LeaseAnswer> {
    if (this.mine) {
      if (await this.write({ node: this.ctx.node, gen, fence: gen }, this.mine)) return { outcome: 'held', sentAt };
      this.mine = undefined;
    }
    const meta = await this.read();
    if (!meta) {
      const at = this.ctx.now();
      return (await this.write({ node: this.ctx.node, gen, fence: gen }, '0')) ? { outcome: 'held', sentAt: at } : { outcome: 'taken', sentAt, holder: 'another node' };
    }
    const holder = meta.metadata.node;
    const fence = Number(meta.metadata.fence ?? 0);
    if (holder) {
      if (this.seen?.generation !== meta.generation) this.seen = { generation: meta.generation, at: this.ctx.now() };
      if (this.ctx.now() - this.seen.at < this.cfg.ttl) return { outcome: 'taken', sentAt, holder, gen: Number(meta.metadata.gen ?? 0) };
    }
    if (!force && fence > gen) return { outcome: 'fenced', sentAt, gen: fence };
    const at = this.ctx.now();
    if (await this.write({ node: this.ctx.node, gen, fence: force ? gen : Math.max(fence, gen) }, meta.generation)) return { outcome: 'held', sentAt: at };
    return { outcome: 'taken', sentAt, holder: 'another node' };
  }

  private async read(): Promise<{ generation: string; metadata: Record<string, string | undefined> } | undefined> {
    try {
      const [m] = await this.file.getMetadata();
      return { generation: String(m.generation), metadata: (m.metadata ?? {}) as Record<string, string | undefined> };
    } catch (e) {
      if ((e as { code?: number }).code === 404) return undefined;
      throw e;
    }
  }

  /** one write with ifGenerationMatch; false when the precondition failed (412) */
  private async write(rec: { node: string | null; gen: number; fence: number }, ifGeneration: string): Promise<boolean> {
    const metadata: Record<string, string> = { gen: String(rec.gen), fence: String(rec.fence), ...(rec.node ? { node: rec.node } : {}) };
    try {
      // the record that counts is the object's metadata, returned by the write itself: no checksum round
      await this.file.save(JSON.stringify(rec), { resumable: false, validation: false, contentType: 'application/json', metadata: { metadata }, preconditionOpts: { ifGenerationMatch: ifGeneration } });
    } catch (e) {
      if ((e as { code?: number }).code === 412) return false;
      throw e;
    }
    this.mine = rec.node ? String(this.file.metadata.generation) : undefined;
    this.seen = undefined;
    return true;
  }

  async release(): Promise<void> {
    const mine = this.mine;
    if (!mine) return;
    this.mine = undefined;
    const meta = await within(this.read(), this.timeoutMs, () => undefined).catch(() => undefined);
    if (meta?.generation !== mine) return;
    await within(this.write({ node: null, gen: Number(meta.metadata.gen ?? 0), fence: Number(meta.metadata.fence ?? 0) }, mine), this.timeoutMs, () => false).catch(() => false);
  }

  async close(): Promise<void> {}
}

function describeError(e: Error): string {
  const code = (e as { code?: number }).code;
  if (code === 429) return 'throttled by Cloud Storage (429): one lease object takes one write a second; raise ttl';
  return `${code ?? e.name}: ${e.message}`.split('\n')[0].slice(0, 200);
}
