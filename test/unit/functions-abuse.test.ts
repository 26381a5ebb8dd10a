/**
 * The open endpoint resists abuse and the secrets live outside the function's environment:
 * uniform 401s (names cannot be probed), no configuration names in error bodies, rotation with two
 * valid secrets and no redeploy, Secrets Manager read at run time through the real SDK client.
 */
import { describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { ApplyResult, CloudAdapter, Observation, Plan } from '../../cloud-adapters/src/types.ts';
import { signEvent } from '../../node-service/src/contract/index.ts';
import { parseFunctionsConfig } from '../../functions/src/config.ts';
import { createController } from '../../functions/src/controller.ts';
import { createApp } from '../../functions/src/app.ts';
import { createSecretReader } from '../../functions/src/secrets.ts';
import { awsSecret } from '../../functions/src/adapters/aws-secrets.ts';

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:vigil-events-AbCdEf';

function rig(cluster: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, awsValues?: Record<string, string | undefined>) {
  const config = parseFunctionsConfig({
    clusters: {
      prod: {
        nodes: [
          { name: 'node1', address: '10.0.1.10' },
          { name: 'node2', address: '10.0.2.10' },
        ],
        modules: [{ name: 'mirror', mode: 'mirror', cloud: { provider: 'aws', targetGroupName: 'tg', vpcId: 'vpc-1', port: 5432 } }],
        ...cluster,
      },
    },
  });
  const calls: string[] = [];
  const adapter = (): CloudAdapter => ({
    cloud: 'aws',
    desired: undefined as never,
    plan: async (): Promise<Plan> => ({ cloud: 'aws', cluster: 'prod', module: 'mirror', changes: [] }),
    apply: async (): Promise<ApplyResult> => ({ applied: [] }),
    observe: async (): Promise<Observation> => ({ cloud: 'aws', cluster: 'prod', module: 'mirror', targets: [] }),
    drain: async (n) => (calls.push(`drain ${n}`), { applied: [] }),
    restore: async (n) => (calls.push(`restore ${n}`), { applied: [] }),
  });
  const logs: string[] = [];
  const log = { info() {}, warn: (o: object, m?: string) => logs.push(`${m} ${JSON.stringify(o)}`), error: (o: object, m?: string) => logs.push(`${m} ${JSON.stringify(o)}`) };
  const ready = async (url: string | URL | Request) => (String(url).includes('10.0.2.10') ? new Response('OK') : new Response('NOT FOUND', { status: 404 }));
  const secrets = createSecretReader({ env, awsSecret: async (arn, stage) => awsValues?.[`${arn}:${stage}`], onError: (s, e) => logs.push(`secret ${s}: ${e.message}`) });
  const controller = createController({ config, adapterFor: adapter, fetch: ready as typeof fetch, log, secrets, env });
  return { app: createApp(controller, log), calls, logs };
}

function event(secret: string, over: Record<string, unknown> = {}) {
  const body = JSON.stringify({ id: `e-${Math.random().toString(36).slice(2)}`, cluster: 'prod', node: 'node2', module: 'mirror', from: 'SECOND', to: 'ALONE', at: Date.now(), seq: 1, ...over });
  return { method: 'POST', body, headers: { 'content-type': 'application/json', ...signEvent(Buffer.from(secret), body, Date.now()) } };
}

describe('functions: the open endpoint resists abuse', () => {
  it('admin routes: an unknown cluster answers exactly as a bad token does (401, same body)', async () => {
    const { app } = rig({ eventSecretEnv: 'EV', adminTokenEnv: 'ADM' }, { EV: 'events-secret-0123456789', ADM: 'admin-token-xyz' });
    const unknown = await app.request('/status?cluster=nope', { headers: { authorization: 'Bearer admin-token-xyz' } });
    const badToken = await app.request('/status?cluster=prod', { headers: { authorization: 'Bearer guess' } });
    const none = await app.request('/reconcile', { method: 'POST', body: '{"cluster":"nope"}' });
    expect([unknown.status, badToken.status, none.status]).toEqual([401, 401, 401]);
    const bodies = await Promise.all([unknown.json(), badToken.json(), none.json()]);
    expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
    expect((await app.request('/status?cluster=prod', { headers: { authorization: 'Bearer admin-token-xyz' } })).status).toBe(200);
  });

  it('a missing secret never names the variable in the answer; the log has it', async () => {
    const { app, logs } = rig({ eventSecretEnv: 'VIGIL_PROD_EVENT_SECRET', adminTokenEnv: 'VIGIL_PROD_ADMIN' }, {});
    const ev = await app.request('/events', event('whatever-0123456789'));
    const st = await app.request('/status?cluster=prod', { headers: { authorization: 'Bearer x' } });
    for (const r of [ev, st]) {
      expect(r.status).toBe(503);
      const text = await r.text();
      expect(text).not.toMatch(/VIGIL_PROD|environment variable/);
    }
    expect(logs.join('\n')).toContain('VIGIL_PROD_EVENT_SECRET');
  });

  it('an unexpected error is a 500 without its message (which could name configuration)', async () => {
    const { app } = rig({ eventSecretEnv: 'EV' }, { EV: 'events-secret-0123456789' });
    app.get('/boom', () => {
      throw new Error('environment variable VIGIL_SECRET_X is not set');
    });
    const r = await app.request('/boom');
    expect(r.status).toBe(500);
    expect(await r.text()).not.toContain('VIGIL_SECRET_X');
  });

  it('rotation: the old and the new events secret are both valid, with no redeploy (env NAME and NAME_PREVIOUS)', async () => {
    const env: NodeJS.ProcessEnv = { EV: 'new-events-secret-0123456789', EV_PREVIOUS: 'old-events-secret-0123456789' };
    const { app, calls } = rig({ eventSecretEnv: 'EV' }, env);
    expect((await app.request('/events', event('new-events-secret-0123456789'))).status).toBe(200);
    expect((await app.request('/events', event('old-events-secret-0123456789'))).status).toBe(200);
    expect((await app.request('/events', event('some-other-secret-0123456789'))).status).toBe(401);
    expect(calls).toEqual(['drain node1', 'restore node2', 'drain node1', 'restore node2']);
  });

  it('rotation on AWS: AWSCURRENT and AWSPREVIOUS from Secrets Manager, read at run time', async () => {
    const { app } = rig({ eventSecrets: [{ awsSecretArn: ARN }] }, {}, { [`${ARN}:AWSCURRENT`]: 'current-secret-0123456789', [`${ARN}:AWSPREVIOUS`]: 'previous-secret-0123456789' });
    expect((await app.request('/events', event('current-secret-0123456789'))).status).toBe(200);
    expect((await app.request('/events', event('previous-secret-0123456789'))).status).toBe(200);
    expect((await app.request('/events', event('another-secret-0123456789'))).status).toBe(401);
  });

  it('per-node event keys: a node signs with its own key; the cluster key and another node\'s key are refused for it', async () => {
    const env = { EV: 'cluster-secret-0123456789', N2: 'node2-own-secret-0123456789', N1: 'node1-own-secret-0123456789' };
    const { app } = rig({ eventSecretEnv: 'EV', nodes: [{ name: 'node1', address: '10.0.1.10', eventSecrets: [{ env: 'N1' }] }, { name: 'node2', address: '10.0.2.10', eventSecrets: [{ env: 'N2' }] }] }, env);
    expect((await app.request('/events', event('node2-own-secret-0123456789'))).status).toBe(200);
    expect((await app.request('/events', event('cluster-secret-0123456789'))).status).toBe(401);
    expect((await app.request('/events', event('node1-own-secret-0123456789'))).status).toBe(401);
  });
});

describe('Secrets Manager reader (real SecretsManagerClient, recorded requests)', () => {
  it('asks for AWSCURRENT and AWSPREVIOUS; a never-rotated secret has no AWSPREVIOUS; values are cached for the TTL', async () => {
    const sm = mockClient(SecretsManagerClient);
    sm.on(GetSecretValueCommand, { SecretId: ARN, VersionStage: 'AWSCURRENT' }).resolves({ SecretString: 'only-one\n' });
    sm.on(GetSecretValueCommand, { SecretId: ARN, VersionStage: 'AWSPREVIOUS' }).rejects(new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret value for staging label: AWSPREVIOUS", $metadata: {} }));
    let t = 0;
    const client = new SecretsManagerClient({ region: 'eu-west-1' });
    const read = createSecretReader({ awsSecret: (arn, stage) => awsSecret(arn, stage, client), now: () => t, ttlMs: 60_000 });
    expect(await read([{ awsSecretArn: ARN }])).toEqual(['only-one']);
    expect(sm.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input)).toEqual([
      { SecretId: ARN, VersionStage: 'AWSCURRENT' },
      { SecretId: ARN, VersionStage: 'AWSPREVIOUS' },
    ]);
    t = 30_000;
    await read([{ awsSecretArn: ARN }]);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2);
    t = 61_000; // rotated values are picked up after the TTL, without a redeploy
    await read([{ awsSecretArn: ARN }]);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(4);
    sm.restore();
  });
});
