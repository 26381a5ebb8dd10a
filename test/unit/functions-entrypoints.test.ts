import type { AddressInfo } from 'node:net';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { DeregisterTargetsCommand, DescribeTargetGroupsCommand, ElasticLoadBalancingV2Client, RegisterTargetsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import azureFunctions from '@azure/functions';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { AwsTargetGroupAdapter, type AwsResources } from '../../cloud-adapters/src/aws/adapter.ts';
import type { ApplyResult, CloudAdapter, Desired, Observation, Plan } from '../../cloud-adapters/src/types.ts';
import { signEvent } from '../../node-service/src/contract/events.ts';
import { parseFunctionsConfig } from '../../functions/src/config.ts';
import { createController, type ModuleResources } from '../../functions/src/controller.ts';
import { createApp } from '../../functions/src/app.ts';
import { setRuntime } from '../../functions/src/runtime.ts';
import { handler as lambdaHandler } from '../../functions/src/aws-lambda.ts';
import { httpHandler as azureHttp, timerHandler as azureTimer } from '../../functions/src/azure.ts';
import '../../functions/src/gcp.ts';

const SECRET = 'cluster-event-secret-0123456789';
const TOKEN = 'admin-token-abc';
const config = parseFunctionsConfig({
  clusters: {
    demo: {
      eventSecret: SECRET,
      adminToken: TOKEN,
      nodes: [
        { name: 'node1', address: '10.0.1.10', apiUrl: 'http://node1.test:9010' },
        { name: 'node2', address: '10.0.2.10', apiUrl: 'http://node2.test:9010' },
      ],
      modules: [{ name: 'mirror', mode: 'mirror', cloud: { provider: 'aws', region: 'eu-west-1', targetGroupName: 'vigil-demo-mirror', vpcId: 'vpc-1', port: 5432 } }],
    },
  },
});

/** records what the controller asks of the cloud */
class FakeAdapter implements CloudAdapter {
  readonly cloud = 'aws' as const;
  calls: string[] = [];
  constructor(readonly desired: Desired<ModuleResources>) {}
  async plan(): Promise<Plan> {
    this.calls.push('plan');
    return { cloud: 'aws', cluster: this.desired.cluster, module: this.desired.module, changes: [{ action: 'register', resource: 'tg', diff: ['+ 10.0.1.10:5432'], request: { operation: 'RegisterTargets', input: {} } }] };
  }
  async apply(p: Plan): Promise<ApplyResult> {
    this.calls.push(`apply ${p.changes.length}`);
    return { applied: p.changes };
  }
  async observe(): Promise<Observation> {
    this.calls.push('observe');
    return { cloud: 'aws', cluster: 'demo', module: 'mirror', targets: lbHealth };
  }
  async drain(n: string): Promise<ApplyResult> {
    this.calls.push(`drain ${n}`);
    return { applied: [{ action: 'deregister', resource: 'tg', diff: [`- ${n}`], request: { operation: 'DeregisterTargets', input: {} } }] };
  }
  async restore(n: string): Promise<ApplyResult> {
    this.calls.push(`restore ${n}`);
    return { applied: n === 'node2' ? [] : [{ action: 'register', resource: 'tg', diff: [`+ ${n}`], request: { operation: 'RegisterTargets', input: {} } }] };
  }
}

let adapter: FakeAdapter;
let lbHealth: Observation['targets'] = [];
/** what each node's own ready.txt answers: 200, 404, or 'down' (connection refused: killed) */
let readyTxt: Record<string, 200 | 404 | 'down'> = {};
const fetched: string[] = [];
const status = (node: string, state: string, ready: boolean) => ({ module: 'mirror', node, mode: 'mirror', state, ready, peers: [], resync: {} });
const nodeApi = async (url: string | URL | Request, init?: RequestInit) => {
  const u = String(url);
  fetched.push(u);
  const ready = /^http:\/\/(10\.0\.[12]\.10):9010\/var\/modules\/mirror\/ready\.txt$/.exec(u);
  if (ready) {
    const r = readyTxt[ready[1] === '10.0.1.10' ? 'node1' : 'node2'] ?? 'down';
    if (r === 'down') throw new TypeError('fetch failed');
    return new Response(r === 200 ? 'OK' : 'NOT FOUND', { status: r });
  }
  if ((init?.headers as Record<string, string>)?.authorization !== `Bearer ${TOKEN}`) return new Response('{}', { status: 401 });
  if (u === 'http://node1.test:9010/api/v1/modules') return Response.json([status('node1', 'PRIM', true)]);
  if (u === 'http://node2.test:9010/api/v1/modules') return Response.json([status('node2', 'SECOND', false)]);
  throw new TypeError('fetch failed');
};

function install(adapterFor: (d: Desired<ModuleResources>) => CloudAdapter = (d) => (adapter = new FakeAdapter(d))) {
  adapter = undefined as never;
  lbHealth = [];
  // node1 was killed, node2 took over (ALONE)
  readyTxt = { node1: 'down', node2: 200 };
  fetched.length = 0;
  const controller = createController({ config, adapterFor, fetch: nodeApi as typeof fetch });
  setRuntime({ controller, app: createApp(controller) });
}

let seq = 0;
function signed(over: Record<string, unknown> = {}, at = Date.now()) {
  const body = JSON.stringify({ id: `evt-${Math.random().toString(36).slice(2)}`, cluster: 'demo', node: 'node2', module: 'mirror', from: 'SECOND', to: 'ALONE', reason: 'peer node1 lost', at, seq: seq++, ...over });
  return { body, headers: { 'content-type': 'application/json', ...signEvent(Buffer.from(SECRET), body, at) } };
}

function functionUrlEvent(method: string, path: string, body: string | null, headers: Record<string, string>, query = '') {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: query,
    headers: { host: 'abc.lambda-url.eu-west-1.on.aws', ...headers },
    body,
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012', apiId: 'abc', domainName: 'abc.lambda-url.eu-west-1.on.aws', domainPrefix: 'abc', requestId: 'req-1', routeKey: '$default', stage: '$default', time: '25/Nov/2026:15:00:00 +0000', timeEpoch: Date.now(),
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '198.51.100.7', userAgent: 'vigil-node' },
    },
  };
}

function albEvent(method: string, path: string, body: string | null, headers: Record<string, string>, query: Record<string, string> = {}) {
  return {
    requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/vigil-fn/abc' } },
    httpMethod: method,
    path,
    queryStringParameters: query,
    headers: { host: 'internal-vigil-fn.eu-west-1.elb.amazonaws.com', ...headers },
    body,
    isBase64Encoded: false,
  };
}

describe('AWS Lambda entry point (hono/aws-lambda)', () => {
  beforeEach(() => install());

  it('function URL: a signed "node2 entered ALONE" drains the old primary at once', async () => {
    const e = signed();
    const res = (await lambdaHandler(functionUrlEvent('POST', '/events', e.body, e.headers) as never)) as { statusCode: number; body: string };
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body).actions).toEqual(['observed node1 not ready (unreachable), node2 ready', 'drain node1', 'restore node2 (no change)']);
    expect(adapter.calls).toEqual(['drain node1', 'restore node2']);
    // it asked the nodes themselves before moving anything
    expect(fetched).toEqual(['http://10.0.1.10:9010/var/modules/mirror/ready.txt', 'http://10.0.2.10:9010/var/modules/mirror/ready.txt']);
  });

  it('API Gateway (REST, v1) event: POST /events is acted upon', async () => {
    const e = signed({ node: 'node1', from: 'PRIM', to: 'SECOND' });
    const event = {
      version: '1.0',
      resource: '/{proxy+}',
      path: '/events',
      httpMethod: 'POST',
      headers: e.headers,
      multiValueHeaders: Object.fromEntries(Object.entries(e.headers).map(([k, v]) => [k, [v]])),
      queryStringParameters: null,
      body: e.body,
      isBase64Encoded: false,
      requestContext: { accountId: '123456789012', apiId: 'api1', httpMethod: 'POST', path: '/prod/events', stage: 'prod', requestId: 'r1', resourceId: 'x', resourcePath: '/{proxy+}', identity: { sourceIp: '198.51.100.7' } },
    };
    readyTxt = { node1: 404, node2: 200 };
    const res = (await lambdaHandler(event as never)) as { statusCode: number; body: string };
    expect(res.statusCode).toBe(200);
    expect(adapter.calls).toEqual(['drain node1', 'restore node2']);
  });

  it('function URL: bad input is a 4xx with a clear message and no cloud call', async () => {
    const good = signed();
    const forged = (over: Record<string, unknown>) => {
      const body = JSON.stringify({ ...JSON.parse(good.body), ...over });
      return { body, headers: { 'content-type': 'application/json', ...signEvent(Buffer.from('a-guessed-secret-0123456'), body, Date.now()) } };
    };
    const cases: Array<[string, string, Record<string, string>, number, RegExp]> = [
      ['unsigned', good.body, { 'content-type': 'application/json' }, 401, /must be signed/],
      ['stale', signed({}, Date.now() - 5 * 60_000).body, signed({}, Date.now() - 5 * 60_000).headers, 401, /stale or future timestamp|bad signature/],
      ['malformed', '{"cluster":', { 'content-type': 'application/json' }, 400, /malformed JSON/],
      ['tampered', good.body.replace('ALONE', 'PRIM'), good.headers, 401, /^bad signature \(wrong secret, or the body was altered\)$/],
      // an unknown cluster or node gets the very answer a bad signature gets: names cannot be probed
      ['unknown cluster', forged({ cluster: 'nope' }).body, forged({ cluster: 'nope' }).headers, 401, /^bad signature \(wrong secret, or the body was altered\)$/],
      ['unknown node', forged({ node: 'node9' }).body, forged({ node: 'node9' }).headers, 401, /^bad signature \(wrong secret, or the body was altered\)$/],
      ['known cluster, wrong key', forged({}).body, forged({}).headers, 401, /^bad signature \(wrong secret, or the body was altered\)$/],
    ];
    for (const [, body, headers, status, msg] of cases) {
      const res = (await lambdaHandler(functionUrlEvent('POST', '/events', body, headers) as never)) as { statusCode: number; body: string };
      expect(res.statusCode).toBe(status);
      expect(JSON.parse(res.body).error).toMatch(msg);
    }
    const stale = signed({}, Date.now() - 5 * 60_000);
    const res = (await lambdaHandler(functionUrlEvent('POST', '/events', stale.body, stale.headers) as never)) as { statusCode: number; body: string };
    expect(JSON.parse(res.body).error).toMatch(/stale or future timestamp: 300 s/);
    expect(adapter?.calls ?? []).toEqual([]);
  });

  it('function URL: a replayed event is refused (409) and not acted upon twice', async () => {
    const e = signed({ node: 'node1', from: 'PRIM', to: 'SECOND' });
    const first = (await lambdaHandler(functionUrlEvent('POST', '/events', e.body, e.headers) as never)) as { statusCode: number };
    const again = (await lambdaHandler(functionUrlEvent('POST', '/events', e.body, e.headers) as never)) as { statusCode: number; body: string };
    expect(first.statusCode).toBe(200);
    expect(again.statusCode).toBe(409);
    expect(JSON.parse(again.body).error).toMatch(/replay/);
    expect(adapter.calls).toEqual(['drain node1', 'restore node2']);
  });

  it('a stale or replayed signed event cannot move traffic wrongly: the nodes\' own ready.txt decide', async () => {
    // a genuine old event "node1 entered PRIM" arrives (retry, replay on another instance) after node2 took over
    const old = signed({ node: 'node1', from: 'SECOND', to: 'PRIM' }, Date.now() - 20_000);
    readyTxt = { node1: 404, node2: 200 };
    const res = (await lambdaHandler(functionUrlEvent('POST', '/events', old.body, old.headers) as never)) as { statusCode: number; body: string };
    expect(res.statusCode).toBe(200);
    expect(adapter.calls).toEqual(['drain node1', 'restore node2']);
    // both claim to be primary (split brain as the nodes say it): nothing is moved
    adapter.calls.length = 0;
    readyTxt = { node1: 200, node2: 200 };
    const both = signed({ node: 'node1', from: 'SECOND', to: 'PRIM' });
    const r2 = (await lambdaHandler(functionUrlEvent('POST', '/events', both.body, both.headers) as never)) as { statusCode: number; body: string };
    expect(JSON.parse(r2.body).actions.at(-1)).toMatch(/more than one node .* reports ready: no load-balancer change/);
    expect(adapter.calls).toEqual([]);
  });

  it('ALB event: GET /status joins the LB view, each node API and the invariant verdict', async () => {
    const noAuth = (await lambdaHandler(albEvent('GET', '/status', null, {}, { cluster: 'demo' }) as never)) as { statusCode: number };
    expect(noAuth.statusCode).toBe(401);
    lbHealth = [
      { node: 'node1', target: '10.0.1.10:5432', state: 'healthy' },
      { node: 'node2', target: '10.0.2.10:5432', state: 'unhealthy' },
    ];
    const res = (await lambdaHandler(albEvent('GET', '/status', null, { authorization: `Bearer ${TOKEN}` }, { cluster: 'demo' }) as never)) as { statusCode: number; body: string };
    expect(res.statusCode).toBe(200);
    const s = JSON.parse(res.body);
    expect(s.modules[0].nodes).toEqual([
      { node: 'node1', address: '10.0.1.10', lb: { state: 'healthy', target: '10.0.1.10:5432' }, service: { state: 'PRIM', ready: true }, agree: true },
      { node: 'node2', address: '10.0.2.10', lb: { state: 'unhealthy', target: '10.0.2.10:5432' }, service: { state: 'SECOND', ready: false }, agree: true },
    ]);
    expect(s.modules[0].invariant).toMatchObject({ verdict: 'ok', healthy: ['node1'] });
  });

  it('ALB event: split brain as the LB sees it is reported at once', async () => {
    lbHealth = [
      { node: 'node1', target: 'a', state: 'healthy' },
      { node: 'node2', target: 'b', state: 'healthy' },
    ];
    const res = (await lambdaHandler(albEvent('GET', '/status', null, { authorization: `Bearer ${TOKEN}` }, { cluster: 'demo' }) as never)) as { body: string };
    expect(JSON.parse(res.body).modules[0].invariant).toMatchObject({ verdict: 'split-brain', healthy: ['node1', 'node2'] });
  });

  it('POST /reconcile plans and applies; an EventBridge scheduled event reconciles every cluster', async () => {
    const res = (await lambdaHandler(functionUrlEvent('POST', '/reconcile', '{"cluster":"demo"}', { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }) as never)) as { statusCode: number; body: string };
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body).results[0].diff).toContain('+ register tg');
    expect(adapter.calls).toEqual(['plan', 'apply 1', 'observe']); // observe: the invariant monitor's input
    const out = await lambdaHandler({ version: '0', id: 'e1', 'detail-type': 'Scheduled Event', source: 'aws.events', account: '123456789012', time: '2026-11-25T15:00:00Z', region: 'eu-west-1', resources: ['arn:aws:events:eu-west-1:123456789012:rule/vigil-reconcile'], detail: {} } as never);
    expect(out).toEqual({ reconciled: [{ cluster: 'demo', module: 'mirror', changes: 1 }] });
    expect(adapter.calls).toEqual(['plan', 'apply 1', 'observe', 'plan', 'apply 1', 'observe']);
  });

  it('through the real AWS adapter: the event becomes RegisterTargets + DeregisterTargets with the exact inputs', async () => {
    const elb = mockClient(ElasticLoadBalancingV2Client);
    const ARN = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/vigil-demo-mirror/1';
    elb.on(DescribeTargetGroupsCommand).resolves({ TargetGroups: [{ TargetGroupArn: ARN, TargetGroupName: 'vigil-demo-mirror' }] });
    elb.on(DeregisterTargetsCommand).resolves({});
    elb.on(RegisterTargetsCommand).resolves({});
    install((d) => new AwsTargetGroupAdapter(new ElasticLoadBalancingV2Client({ region: 'eu-west-1' }), d as Desired<AwsResources>));
    const e = signed();
    const res = (await lambdaHandler(functionUrlEvent('POST', '/events', e.body, e.headers) as never)) as { statusCode: number };
    expect(res.statusCode).toBe(200);
    expect(elb.commandCalls(RegisterTargetsCommand)[0].args[0].input).toEqual({ TargetGroupArn: ARN, Targets: [{ Id: '10.0.2.10', Port: 5432 }] });
    expect(elb.commandCalls(DeregisterTargetsCommand)[0].args[0].input).toEqual({ TargetGroupArn: ARN, Targets: [{ Id: '10.0.1.10', Port: 5432 }] });
    elb.restore();
  });
});

describe('Azure Functions entry point (v4 HttpRequest)', () => {
  beforeEach(() => install());
  const { HttpRequest, InvocationContext } = azureFunctions;

  it('routes /api/events to the app, with the signature checked on the exact body', async () => {
    const e = signed({ node: 'node1', from: 'PRIM', to: 'STOP' });
    const req = new HttpRequest({ method: 'POST', url: 'https://vigil-fn.azurewebsites.net/api/events', headers: e.headers, body: { string: e.body }, params: { path: 'events' } });
    const res = await azureHttp(req, new InvocationContext({ functionName: 'vigil' }));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body as string).actions).toEqual(['observed node1 not ready (unreachable), node2 ready', 'drain node1', 'restore node2 (no change)']);
    const bad = new HttpRequest({ method: 'POST', url: 'https://vigil-fn.azurewebsites.net/api/events', headers: { 'content-type': 'application/json' }, body: { string: e.body }, params: { path: 'events' } });
    expect((await azureHttp(bad, new InvocationContext({ functionName: 'vigil' }))).status).toBe(401);
  });

  it('the timer trigger reconciles', async () => {
    await azureTimer({ isPastDue: false } as never, new InvocationContext({ functionName: 'vigil-reconcile' }));
    expect(adapter.calls).toEqual(['plan', 'apply 1', 'observe']);
  });
});

describe('Google Cloud Functions entry point (functions-framework)', () => {
  const server = getTestServer('vigil');
  let base: string;
  beforeEach(async () => {
    install();
    if (!server.listening) await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it('POST /events through the framework server (express body parsing, raw body verified)', async () => {
    const e = signed({ node: 'node2', from: 'SECOND', to: 'PRIM' });
    const res = await fetch(`${base}/events`, { method: 'POST', headers: e.headers, body: e.body });
    expect(res.status).toBe(200);
    expect((await res.json()).actions).toEqual(['observed node1 not ready (unreachable), node2 ready', 'drain node1', 'restore node2 (no change)']);
    // the same JSON re-serialised with other whitespace is not what was signed
    const reformatted = JSON.stringify(JSON.parse(e.body), null, 2);
    const res2 = await fetch(`${base}/events`, { method: 'POST', headers: e.headers, body: reformatted });
    expect(res2.status).toBe(401);
  });

  it('GET /status needs the bearer token; unknown routes are a 404 with the route list', async () => {
    expect((await fetch(`${base}/status?cluster=demo`)).status).toBe(401);
    const ok = await fetch(`${base}/status?cluster=demo`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    const nf = await fetch(`${base}/nope`);
    expect(nf.status).toBe(404);
    expect((await nf.json()).error).toMatch(/routes: POST \/reconcile, GET \/status, POST \/events/);
  });
});

describe('cloud API failure while acting on an event', () => {
  it('answers 502 so the node retries, and the retry (same id) is acted upon', async () => {
    let fail = true;
    install((d) => {
      const a = new FakeAdapter(d);
      a.drain = async (n: string) => {
        if (fail) throw new Error('Throttling: Rate exceeded');
        a.calls.push(`drain ${n}`);
        return { applied: [] };
      };
      return (adapter = a);
    });
    const e = signed({ node: 'node1', from: 'PRIM', to: 'STOP' });
    const first = (await lambdaHandler(functionUrlEvent('POST', '/events', e.body, e.headers) as never)) as { statusCode: number; body: string };
    expect(first.statusCode).toBe(502);
    expect(JSON.parse(first.body).error).toMatch(/drain node1 failed: Throttling: Rate exceeded/);
    fail = false;
    adapter.calls.length = 0;
    const retry = (await lambdaHandler(functionUrlEvent('POST', '/events', e.body, e.headers) as never)) as { statusCode: number };
    expect(retry.statusCode).toBe(200);
    expect(adapter.calls).toEqual(['drain node1', 'restore node2']);
  });
});
