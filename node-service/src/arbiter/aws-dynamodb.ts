import { randomUUID } from 'node:crypto';
import { type AttributeValue, ConditionalCheckFailedException, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { ArbiterConfig } from '../config/arbiter.ts';
import type { LeaseAnswer } from '../core/lease.ts';
import { type ArbiterContext, claimTimeoutMs, leaseName, type LeaseStore, within } from './index.ts';

type DynamoConfig = Extract<ArbiterConfig, { type: 'aws-dynamodb' }>;

/** What we last saw of another holder's record, on our monotonic clock. */
interface Seen {
  readonly rvn: string;
  readonly at: number;
}

/**
 * The lease as one DynamoDB item (the scheme of AWS's DynamoDB Lock Client): {pk, holder, gen,
 * fence, rvn}. DynamoDB keeps no time, so expiry is observed: every write puts a fresh record
 * version number (rvn); a contender that has seen the same rvn for `ttl` on its own clock may take
 * the item with the condition `rvn = :seen`. The holder's last renewal was written at or after it
 * sent it, and the contender saw that rvn only after the write, so it takes over no sooner than
 * ttl after the holder's `sentAt`. Every write is conditional; reads are strongly consistent.
 */
export class DynamoLeaseStore implements LeaseStore {
  readonly describe: string;
  private readonly client: DynamoDBClient;
  private readonly key: Record<string, AttributeValue>;
  private readonly timeoutMs: number;
  /** the rvn of our own last write while we hold the lease */
  private mine?: string;
  private seen?: Seen;

  constructor(
    private readonly cfg: DynamoConfig,
    private readonly ctx: ArbiterContext,
    client?: DynamoDBClient,
  ) {
    this.key = { pk: { S: leaseName(ctx) } };
    this.timeoutMs = claimTimeoutMs(cfg.ttl);
    this.describe = `aws-dynamodb table ${cfg.table} item ${leaseName(ctx)}`;
    // two attempts: the SDK's retry of a throttled call still fits in the claim's time
    this.client = client ?? new DynamoDBClient({ region: cfg.region, endpoint: cfg.endpoint, maxAttempts: 2 });
  }

  claim(gen: number, force: boolean): Promise<LeaseAnswer> {
    const sentAt = this.ctx.now();
    const unanswered = (): LeaseAnswer => ({ outcome: 'unreachable', sentAt, reason: `no answer within ${this.timeoutMs} ms` });
    return within(this.attempt(gen, force, sentAt, AbortSignal.timeout(this.timeoutMs)), this.timeoutMs, unanswered);
  }

  private async attempt(gen: number, force: boolean, sentAt: number, signal: AbortSignal): Promise<LeaseAnswer> {
    try {
      if (this.mine) {
        const renewed = await this.put(gen, gen, { cond: 'holder = :me AND rvn = :rvn', values: { ':me': { S: this.ctx.node }, ':rvn': { S: this.mine } } }, signal);
        if (renewed) return { outcome: 'held', sentAt };
        this.mine = undefined;
      }
      const got = await this.client.send(new GetItemCommand({ TableName: this.cfg.table, Key: this.key, ConsistentRead: true }), { abortSignal: signal });
      const item = got.Item;
      if (!item) {
        const at = this.ctx.now();
        return (await this.put(gen, gen, { cond: 'attribute_not_exists(pk)' }, signal)) ? { outcome: 'held', sentAt: at } : { outcome: 'taken', sentAt, holder: 'another node' };
      }
      const rvn = item.rvn?.S ?? '';
      const holder = item.holder?.S;
      const fence = Number(item.fence?.N ?? 0);
      if (holder) {
        // held by another node (or by us before a restart): expired only once unchanged for ttl
        if (this.seen?.rvn !== rvn) this.seen = { rvn, at: this.ctx.now() };
        if (this.ctx.now() - this.seen.at < this.cfg.ttl) return { outcome: 'taken', sentAt, holder, gen: Number(item.gen?.N ?? 0) };
      }
      if (!force && fence > gen) return { outcome: 'fenced', sentAt, gen: fence };
      const at = this.ctx.now();
      if (await this.put(gen, force ? gen : Math.max(fence, gen), { cond: 'rvn = :seen', values: { ':seen': { S: rvn } } }, signal)) return { outcome: 'held', sentAt: at };
      return { outcome: 'taken', sentAt, holder: 'another node' };
    } catch (e) {
      return { outcome: 'unreachable', sentAt, reason: describeError(e as Error, this.timeoutMs) };
    }
  }

  /** one conditional write of the whole record; false when the condition failed */
  private async put(gen: number, fence: number, c: { cond: string; values?: Record<string, AttributeValue> }, signal: AbortSignal, holder: string | null = this.ctx.node): Promise<boolean> {
    const rvn = randomUUID();
    const item: Record<string, AttributeValue> = { ...this.key, gen: { N: String(gen) }, fence: { N: String(fence) }, rvn: { S: rvn }, ...(holder ? { holder: { S: holder } } : {}) };
    try {
      await this.client.send(new PutItemCommand({ TableName: this.cfg.table, Item: item, ConditionExpression: c.cond, ExpressionAttributeValues: c.values }), { abortSignal: signal });
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
    this.mine = holder ? rvn : undefined;
    this.seen = undefined;
    return true;
  }

  /** the record stays (with its fence), without a holder: the peer takes it at once */
  async release(): Promise<void> {
    const mine = this.mine;
    if (!mine) return;
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      const got = await this.client.send(new GetItemCommand({ TableName: this.cfg.table, Key: this.key, ConsistentRead: true }), { abortSignal: signal });
      const gen = Number(got.Item?.gen?.N ?? 0);
      await this.put(gen, Number(got.Item?.fence?.N ?? gen), { cond: 'holder = :me AND rvn = :rvn', values: { ':me': { S: this.ctx.node }, ':rvn': { S: mine } } }, signal, null);
    } catch {
      // best effort: the lease then expires by itself
    }
    this.mine = undefined;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

function describeError(e: Error, timeoutMs: number): string {
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  if (e.name === 'ProvisionedThroughputExceededException' || e.name === 'ThrottlingException' || e.name === 'RequestLimitExceeded') return `throttled by DynamoDB (${e.name}): raise the table's capacity or use on-demand`;
  return `${e.name}: ${e.message}`.slice(0, 200);
}
