import { type AttributeValue, ConditionalCheckFailedException, DynamoDBClient, GetItemCommand, ProvisionedThroughputExceededException, PutItemCommand, type PutItemCommandInput } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamoLeaseStore } from '../../node-service/src/arbiter/aws-dynamodb.ts';
import { silentLogger } from '../../node-service/src/log/logger.ts';

// The DynamoDB lease through the real SDK client, its requests answered by a table that applies the
// conditions as DynamoDB does (and knows only the three this adapter may send: any other fails).
const TTL = 10_000;
const mock = mockClient(DynamoDBClient);
let table: Map<string, Record<string, AttributeValue>>;
let clock = 0;

function conditionHolds(input: PutItemCommandInput, cur: Record<string, AttributeValue> | undefined): boolean {
  const v = input.ExpressionAttributeValues ?? {};
  switch (input.ConditionExpression) {
    case 'attribute_not_exists(pk)':
      return cur === undefined;
    case 'rvn = :seen':
      return cur?.rvn?.S === v[':seen'].S;
    case 'holder = :me AND rvn = :rvn':
      return cur?.holder?.S === v[':me'].S && cur?.rvn?.S === v[':rvn'].S;
    default:
      throw new Error(`unexpected condition ${input.ConditionExpression}`);
  }
}

function store(node: string): DynamoLeaseStore {
  return new DynamoLeaseStore({ type: 'aws-dynamodb', table: 'vigil-leases', ttl: TTL }, { cluster: 'c1', module: 'db', node, log: silentLogger(), now: () => clock }, new DynamoDBClient({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test' } }));
}

const puts = () => mock.commandCalls(PutItemCommand).map((c) => c.args[0].input);

describe('aws-dynamodb lease store (SDK with a conditional table)', () => {
  beforeEach(() => {
    table = new Map();
    clock = 0;
    mock.reset();
    mock.on(GetItemCommand).callsFake((input) => {
      expect(input).toMatchObject({ TableName: 'vigil-leases', Key: { pk: { S: 'c1/db' } }, ConsistentRead: true });
      return { Item: table.get('c1/db') };
    });
    mock.on(PutItemCommand).callsFake((input: PutItemCommandInput) => {
      if (!conditionHolds(input, table.get('c1/db'))) throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
      table.set('c1/db', input.Item!);
      return {};
    });
  });
  afterEach(() => mock.reset());

  it('creates the item only if absent, renews only its own record version, and records the generation as fence', async () => {
    const a = store('node1');
    expect(await a.claim(4, false)).toMatchObject({ outcome: 'held' });
    expect(puts()[0]).toMatchObject({ TableName: 'vigil-leases', ConditionExpression: 'attribute_not_exists(pk)', Item: { pk: { S: 'c1/db' }, holder: { S: 'node1' }, gen: { N: '4' }, fence: { N: '4' } } });
    const firstRvn = puts()[0].Item!.rvn.S!;
    expect(await a.claim(5, false)).toMatchObject({ outcome: 'held' });
    expect(puts()[1]).toMatchObject({ ConditionExpression: 'holder = :me AND rvn = :rvn', ExpressionAttributeValues: { ':me': { S: 'node1' }, ':rvn': { S: firstRvn } }, Item: { gen: { N: '5' }, fence: { N: '5' } } });
    expect(puts()[1].Item!.rvn.S).not.toBe(firstRvn);
  });

  it('conflict: another holder is waited out for ttl on our clock, then taken with rvn = the version seen', async () => {
    const a = store('node1');
    const b = store('node2');
    await a.claim(1, false);
    expect(await b.claim(1, false)).toMatchObject({ outcome: 'taken', holder: 'node1' });
    clock = TTL - 1;
    expect(await b.claim(1, false)).toMatchObject({ outcome: 'taken' });
    // node1 renews: a new version, the wait starts again
    await a.claim(1, false);
    clock = TTL + 10;
    expect(await b.claim(1, false)).toMatchObject({ outcome: 'taken' });
    clock = 2 * TTL + 20;
    const seen = table.get('c1/db')!.rvn.S;
    expect(await b.claim(1, false)).toMatchObject({ outcome: 'held' });
    expect(puts().at(-1)).toMatchObject({ ConditionExpression: 'rvn = :seen', ExpressionAttributeValues: { ':seen': { S: seen } }, Item: { holder: { S: 'node2' } } });
    // node1's renewal now fails its condition: it is told so, and who holds it
    expect(await a.claim(1, false)).toMatchObject({ outcome: 'taken', holder: 'node2' });
  });

  it('release leaves the record without a holder: the peer takes it at once; the fence stays', async () => {
    const a = store('node1');
    const b = store('node2');
    await a.claim(7, false);
    await a.release();
    expect(table.get('c1/db')).toMatchObject({ fence: { N: '7' } });
    expect(table.get('c1/db')!.holder).toBeUndefined();
    expect(await b.claim(6, false)).toMatchObject({ outcome: 'fenced', gen: 7 });
    expect(await b.claim(6, true)).toMatchObject({ outcome: 'held' });
    expect(table.get('c1/db')).toMatchObject({ holder: { S: 'node2' }, fence: { N: '6' } });
  });

  it('a race lost between read and write (ConditionalCheckFailed) is reported as taken', async () => {
    const b = store('node2');
    mock.on(GetItemCommand).resolves({});
    mock.on(PutItemCommand).rejects(new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} }));
    expect(await b.claim(1, false)).toMatchObject({ outcome: 'taken' });
  });

  it('throttling and timeouts are unreachable, with a reason that says what to do', async () => {
    const a = store('node1');
    mock.on(GetItemCommand).rejects(new ProvisionedThroughputExceededException({ message: 'Rate of requests exceeds the allowed throughput', $metadata: {} }));
    expect(await a.claim(1, false)).toMatchObject({ outcome: 'unreachable', reason: expect.stringMatching(/throttled by DynamoDB.*raise the table's capacity/) });
    mock.on(GetItemCommand).callsFake(() => new Promise(() => {}));
    expect(await a.claim(1, false)).toMatchObject({ outcome: 'unreachable', reason: `no answer within ${TTL / 3} ms`.replace(/\.\d+/, '') });
  }, 10_000);
});
