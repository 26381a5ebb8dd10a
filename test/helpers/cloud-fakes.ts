/**
 * Stateful fake clouds the real SDK clients talk to (no cloud is reachable here): what was written is
 * what is read back, and every request is recorded for the tests to assert.
 *   FakeElb      ELBv2 behind aws-sdk-client-mock
 *   FakeArm      an ARM endpoint as the @azure/core-rest-pipeline HttpClient
 *   FakeCompute  a local Compute REST endpoint (operations RUNNING until waited on)
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { mockClient } from 'aws-sdk-client-mock';
import {
  CreateTargetGroupCommand,
  DeregisterTargetsCommand,
  DescribeTargetGroupAttributesCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ModifyTargetGroupAttributesCommand,
  ModifyTargetGroupCommand,
  RegisterTargetsCommand,
  TargetGroupNotFoundException,
  type TargetGroup,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import {
  FirewallsClient,
  GlobalOperationsClient,
  InstanceGroupsClient,
  RegionBackendServicesClient,
  RegionHealthChecksClient,
  RegionOperationsClient,
  ZoneOperationsClient,
} from '@google-cloud/compute';
import { OAuth2Client } from 'google-auth-library';
import type { GcpClients } from '../../cloud-adapters/src/gcp/adapter.ts';
import { createHttpHeaders, type HttpClient, type PipelineRequest, type PipelineResponse } from '@azure/core-rest-pipeline';

/** A stateful stand-in for ELBv2 behind aws-sdk-client-mock: what was written is what is read back. */
export class FakeElb {
  constructor(readonly arn: string = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/vigil-demo-mirror/0123456789abcdef') {}
  tgs = new Map<string, { tg: TargetGroup; attrs: Map<string, string>; targets: Map<string, { Id: string; Port: number; state: string }> }>();
  byArn(arn: string | undefined) {
    for (const v of this.tgs.values()) if (v.tg.TargetGroupArn === arn) return v;
    throw new TargetGroupNotFoundException({ message: `One or more target groups not found`, $metadata: {} });
  }
  install(mock: ReturnType<typeof mockClient>) {
    mock.on(DescribeTargetGroupsCommand).callsFake((i) => {
      const v = this.tgs.get(i.Names[0]);
      if (!v) throw new TargetGroupNotFoundException({ message: `One or more target groups not found`, $metadata: {} });
      return { TargetGroups: [structuredClone(v.tg)] };
    });
    mock.on(CreateTargetGroupCommand).callsFake((i) => {
      const { Tags: _t, ...tg } = i;
      this.tgs.set(i.Name, { tg: { ...tg, TargetGroupName: i.Name, TargetGroupArn: this.arn }, attrs: new Map([['deregistration_delay.timeout_seconds', '300'], ['load_balancing.cross_zone.enabled', 'use_load_balancer_configuration']]), targets: new Map() });
      return { TargetGroups: [{ TargetGroupArn: this.arn, TargetGroupName: i.Name }] };
    });
    mock.on(ModifyTargetGroupCommand).callsFake((i) => {
      const v = this.byArn(i.TargetGroupArn);
      const { TargetGroupArn: _a, ...rest } = i;
      Object.assign(v.tg, rest);
      return { TargetGroups: [v.tg] };
    });
    mock.on(DescribeTargetGroupAttributesCommand).callsFake((i) => ({ Attributes: [...this.byArn(i.TargetGroupArn).attrs].map(([Key, Value]) => ({ Key, Value })) }));
    mock.on(ModifyTargetGroupAttributesCommand).callsFake((i) => {
      const v = this.byArn(i.TargetGroupArn);
      for (const a of i.Attributes) v.attrs.set(a.Key, a.Value);
      return { Attributes: [] };
    });
    mock.on(RegisterTargetsCommand).callsFake((i) => {
      const v = this.byArn(i.TargetGroupArn);
      for (const t of i.Targets) if (v.targets.get(`${t.Id}:${t.Port}`)?.state !== 'healthy') v.targets.set(`${t.Id}:${t.Port}`, { Id: t.Id, Port: t.Port, state: 'initial' });
      return {};
    });
    mock.on(DeregisterTargetsCommand).callsFake((i) => {
      const v = this.byArn(i.TargetGroupArn);
      for (const t of i.Targets) {
        const cur = v.targets.get(`${t.Id}:${t.Port}`);
        if (cur) cur.state = 'draining';
      }
      return {};
    });
    mock.on(DescribeTargetHealthCommand).callsFake((i) => ({
      TargetHealthDescriptions: [...this.byArn(i.TargetGroupArn).targets.values()].map((t) => ({ Target: { Id: t.Id, Port: t.Port }, TargetHealth: { State: t.state } })),
    }));
  }
}

interface Recorded {
  method: string;
  path: string;
  apiVersion: string | null;
  auth: string | undefined;
  body: any;
}

/** A stateful in-memory ARM: records the requests the real SDK builds and answers like ARM does. */
export class FakeArm implements HttpClient {
  requests: Recorded[] = [];
  constructor(public lb: any) {}
  get lbId(): string {
    return this.lb.id;
  }
  health: Record<string, string> = {};
  asyncPolls = 0;

  async sendRequest(req: PipelineRequest): Promise<PipelineResponse> {
    const url = new URL(req.url);
    const body = typeof req.body === 'string' ? JSON.parse(req.body) : undefined;
    const path = decodeURIComponent(url.pathname);
    this.requests.push({ method: req.method, path, apiVersion: url.searchParams.get('api-version'), auth: req.headers.get('authorization'), body });
    const respond = (status: number, json?: unknown, headers: Record<string, string> = {}): PipelineResponse => ({
      request: req,
      status,
      headers: createHttpHeaders({ 'content-type': 'application/json', ...headers }),
      bodyAsText: json === undefined ? '' : JSON.stringify(json),
    });
    const p = this.lb.properties;
    if (path === '/operations/op1') {
      this.asyncPolls++;
      return respond(200, { status: this.asyncPolls > 1 ? 'Succeeded' : 'InProgress' });
    }
    if (path.toLowerCase() === this.lbId.toLowerCase()) {
      if (req.method === 'GET') return respond(200, this.lb);
      if (req.method === 'PUT') {
        this.lb = { ...body, id: this.lbId, properties: { ...body.properties, provisioningState: 'Succeeded' } };
        return respond(200, this.lb);
      }
    }
    const poolMatch = path.match(/\/backendAddressPools\/([^/]+)$/);
    if (poolMatch) {
      const i = p.backendAddressPools.findIndex((x: any) => x.name === poolMatch[1]);
      if (req.method === 'GET') return i < 0 ? respond(404, { error: { code: 'NotFound', message: 'not found' } }) : respond(200, p.backendAddressPools[i]);
      if (req.method === 'PUT') {
        const pool = { id: `${this.lbId}/backendAddressPools/${poolMatch[1]}`, name: poolMatch[1], properties: { ...body.properties, provisioningState: 'Succeeded' } };
        if (i < 0) p.backendAddressPools.push(pool);
        else p.backendAddressPools[i] = pool;
        // first pool PUT answers like ARM often does: 201 + Azure-AsyncOperation to poll
        if (i < 0) return respond(201, pool, { 'azure-asyncoperation': 'https://management.azure.com/operations/op1' });
        return respond(200, pool);
      }
    }
    const healthMatch = path.match(/\/loadBalancingRules\/([^/]+)\/health$/);
    if (healthMatch && req.method === 'POST') {
      const pool = p.backendAddressPools[0];
      return respond(200, {
        up: Object.values(this.health).filter((s) => s === 'Up').length,
        loadBalancerBackendAddresses: (pool?.properties.loadBalancerBackendAddresses ?? []).map((a: any) => ({ ipAddress: a.properties.ipAddress, state: this.health[a.properties.ipAddress] ?? 'Down', reason: 'probe' })),
      });
    }
    return respond(404, { error: { code: 'NotFound', message: `${req.method} ${path}` } });
  }

  writes() {
    return this.requests.filter((r) => r.method === 'PUT');
  }
}

interface Req { method: string; path: string; body: any }

/** A stateful local Compute REST endpoint: resources, instance-group members, operations that are RUNNING until waited on. */
export class FakeCompute {
  requests: Req[] = [];
  res = new Map<string, any>();
  members = new Map<string, Set<string>>();
  ops = new Map<string, { waits: number; done: boolean }>();
  health = new Map<string, string>();
  n = 0;
  server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      const path = req.url!.split('?')[0];
      const body = text ? JSON.parse(text) : undefined;
      this.requests.push({ method: req.method!, path, body });
      const [status, out] = this.route(req.method!, path, body);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(out));
    });
  });
  op(): [number, any] {
    const name = `operation-${++this.n}`;
    this.ops.set(name, { waits: 0, done: false });
    return [200, { kind: 'compute#operation', name, status: 'RUNNING' }];
  }
  route(method: string, path: string, body: any): [number, any] {
    const wait = path.match(/\/operations\/([^/]+)\/wait$/);
    if (wait) {
      const o = this.ops.get(wait[1])!;
      o.waits++;
      o.done = o.waits >= 2; // RUNNING on the first wait, DONE on the second
      return [200, { name: wait[1], status: o.done ? 'DONE' : 'RUNNING' }];
    }
    const m = path.match(/^(.*)\/(addInstances|removeInstances|listInstances|getHealth)$/);
    if (m && method === 'POST') {
      const [, base, verb] = m;
      if (verb === 'listInstances') return [200, { items: [...(this.members.get(base) ?? [])].map((instance) => ({ instance, status: 'RUNNING' })) }];
      if (verb === 'getHealth') {
        const group = body.group.replace(/^https?:\/\/[^/]+/, '');
        const list = [...(this.members.get(group) ?? [])];
        return [200, { healthStatus: list.map((instance) => ({ instance, ipAddress: '10.2.0.x', healthState: this.health.get(instance.split('/').pop()!) ?? 'UNHEALTHY' })) }];
      }
      const set = this.members.get(base) ?? new Set();
      for (const i of body.instances) verb === 'addInstances' ? set.add(i.instance) : set.delete(i.instance);
      this.members.set(base, set);
      return this.op();
    }
    if (method === 'GET') return this.res.has(path) ? [200, this.res.get(path)] : [404, { error: { code: 404, message: `The resource '${path}' was not found`, errors: [{ reason: 'notFound' }] } }];
    if (method === 'POST') {
      this.res.set(`${path}/${body.name}`, { ...body, selfLink: `https://www.googleapis.com${path}/${body.name}` });
      return this.op();
    }
    if (method === 'PATCH') {
      this.res.set(path, { ...this.res.get(path), ...body });
      return this.op();
    }
    return [400, { error: { code: 400, message: 'unsupported' } }];
  }
  writes() {
    return this.requests.filter((r) => r.method !== 'GET' && !r.path.endsWith('/wait') && !r.path.endsWith('/listInstances') && !r.path.endsWith('/getHealth'));
  }
}


/**
 * Starts `fake` on a loopback port and returns the real @google-cloud/compute clients (REST transport)
 * pointed at it; `close()` closes the clients and the endpoint.
 */
export async function startFakeCompute(fake: FakeCompute): Promise<GcpClients & { close(): Promise<void> }> {
  await new Promise<void>((r) => fake.server.listen(0, '127.0.0.1', r));
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'fake-token', expiry_date: Date.now() + 3_600_000 });
  const opts = { apiEndpoint: '127.0.0.1', port: (fake.server.address() as AddressInfo).port, protocol: 'http', fallback: true, authClient: auth } as never;
  const c = {
    regionHealthChecks: new RegionHealthChecksClient(opts),
    firewalls: new FirewallsClient(opts),
    regionBackendServices: new RegionBackendServicesClient(opts),
    instanceGroups: new InstanceGroupsClient(opts),
    regionOperations: new RegionOperationsClient(opts),
    globalOperations: new GlobalOperationsClient(opts),
    zoneOperations: new ZoneOperationsClient(opts),
  };
  return {
    ...(c as unknown as GcpClients),
    close: async () => {
      await Promise.all(Object.values(c).map((x) => x.close()));
      await new Promise((r) => fake.server.close(r));
    },
  };
}
