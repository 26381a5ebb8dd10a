import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type BlobLeaseClient, type BlockBlobClient, BlobServiceClient, RestError, StorageSharedKeyCredential } from '@azure/storage-blob';
import type { TokenCredential } from '@azure/core-auth';
import type { ArbiterConfig } from '../config/arbiter.ts';
import type { LeaseAnswer } from '../core/lease.ts';
import { answerWithin, type ArbiterContext, claimTimeoutMs, leaseName, type LeaseStore, within } from './index.ts';

type AzureConfig = Extract<ArbiterConfig, { type: 'azure-blob' }>;

/**
 * The lease as an Azure blob lease on `<container>/<cluster>/<module>.lease`: Azure Storage enforces
 * it (an acquire is refused with 409 while another lease lives; 15 to 60 s, whole seconds, rounded
 * up). The blob's metadata carries {node, gen} and the fence, written under our lease id; the fence
 * stays when the lease ends. The acquire is conditional on the blob's ETag as read, so the fence
 * cannot change between our check and our lease.
 */
export class AzureBlobLeaseStore implements LeaseStore {
  readonly describe: string;
  private readonly blob: BlockBlobClient;
  private readonly lease: BlobLeaseClient;
  private readonly timeoutMs: number;
  private readonly ttlS: number;
  private held = false;

  constructor(
    cfg: AzureConfig,
    private readonly ctx: ArbiterContext,
    credential?: StorageSharedKeyCredential | TokenCredential,
  ) {
    this.timeoutMs = claimTimeoutMs(cfg.ttl);
    this.ttlS = Math.ceil(cfg.ttl / 1000);
    const cred = credential ?? (cfg.account_key_file ? new StorageSharedKeyCredential(accountName(cfg.account_url), readFileSync(cfg.account_key_file, 'utf8').trim()) : undefined);
    if (!cred) throw new Error('azure-blob: give account_key_file, or run where managed identity is available (the daemon then uses it)');
    const service = new BlobServiceClient(cfg.account_url, cred, { retryOptions: { maxTries: 2, tryTimeoutInMs: Math.max(200, Math.floor(this.timeoutMs / 2)) } });
    this.blob = service.getContainerClient(cfg.container).getBlockBlobClient(`${leaseName(ctx)}.lease`);
    this.lease = this.blob.getBlobLeaseClient(randomUUID());
    this.describe = `azure-blob ${cfg.account_url}/${cfg.container}/${leaseName(ctx)}.lease`;
  }

  claim(gen: number, force: boolean): Promise<LeaseAnswer> {
    const sentAt = this.ctx.now();
    const abortSignal = AbortSignal.timeout(this.timeoutMs);
    return answerWithin(this.attempt(gen, force, sentAt, abortSignal), sentAt, this.timeoutMs, (e) => describeError(e, this.timeoutMs));
  }

  private async attempt(gen: number, force: boolean, sentAt: number, abortSignal: AbortSignal): Promise<LeaseAnswer> {
    if (this.held) {
      try {
        await this.lease.renewLease({ abortSignal });
        await this.blob.setMetadata({ node: this.ctx.node, gen: String(gen), fence: String(gen) }, { conditions: { leaseId: this.lease.leaseId }, abortSignal });
        return { outcome: 'held', sentAt };
      } catch (e) {
        if (!isStatus(e, 409, 412)) throw e;
        this.held = false; // our lease expired or was broken: claim afresh
      }
    }
    const props = await this.properties(abortSignal);
    const meta = props.metadata ?? {};
    const fence = Number(meta.fence ?? 0);
    if (props.leaseState === 'leased') return { outcome: 'taken', sentAt, holder: meta.node ?? 'another node', gen: Number(meta.gen ?? 0) };
    if (!force && fence > gen) return { outcome: 'fenced', sentAt, gen: fence };
    const at = this.ctx.now();
    try {
      await this.lease.acquireLease(this.ttlS, { conditions: { ifMatch: props.etag }, abortSignal });
    } catch (e) {
      if (isStatus(e, 409, 412)) return { outcome: 'taken', sentAt, holder: 'another node' };
      throw e;
    }
    this.held = true;
    await this.blob.setMetadata({ node: this.ctx.node, gen: String(gen), fence: String(force ? gen : Math.max(fence, gen)) }, { conditions: { leaseId: this.lease.leaseId }, abortSignal });
    return { outcome: 'held', sentAt: at };
  }

  /** the lease blob's properties; created empty (if absent) on first use */
  private async properties(abortSignal: AbortSignal) {
    try {
      return await this.blob.getProperties({ abortSignal });
    } catch (e) {
      if (!isStatus(e, 404)) throw e;
      await this.blob.upload('', 0, { conditions: { ifNoneMatch: '*' }, abortSignal }).catch((u: unknown) => {
        if (!isStatus(u, 409, 412)) throw u;
      });
      return this.blob.getProperties({ abortSignal });
    }
  }

  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    await within(this.lease.releaseLease({ abortSignal: AbortSignal.timeout(this.timeoutMs) }).then(() => undefined), this.timeoutMs, () => undefined).catch(() => undefined);
  }

  async close(): Promise<void> {}
}

/** https://ACCOUNT.blob.core.windows.net, or an emulator's http://HOST:PORT/ACCOUNT */
function accountName(url: string): string {
  const u = new URL(url);
  return u.hostname.endsWith('.blob.core.windows.net') ? u.hostname.split('.')[0] : u.pathname.split('/').filter(Boolean)[0] ?? '';
}

const isStatus = (e: unknown, ...codes: number[]): boolean => e instanceof RestError && codes.includes(e.statusCode ?? 0);

function describeError(e: Error, timeoutMs: number): string {
  if (e.name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  if (e instanceof RestError && (e.statusCode === 503 || e.statusCode === 500)) {
    // a HEAD answer has no body: the error code is only in its header
    const code = e.code ?? e.response?.headers.get('x-ms-error-code') ?? '';
    return `Azure Storage busy (${e.statusCode} ${code}): throttled, retried at the next renewal`;
  }
  return `${e.name}: ${e.message}`.split('\n')[0].slice(0, 200);
}
