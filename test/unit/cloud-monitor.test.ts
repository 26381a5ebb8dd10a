import { describe, expect, it } from 'vitest';
import { createMirrorMonitor } from '../../cloud-adapters/src/monitor.ts';
import { probeSettings, awsTargetGroupAttributes } from '../../cloud-adapters/src/probe-settings.ts';
import type { HealthState, Observation } from '../../cloud-adapters/src/types.ts';

const obs = (...states: HealthState[]): Observation => ({
  cloud: 'aws',
  cluster: 'demo',
  module: 'mirror',
  targets: states.map((state, i) => ({ node: `node${i + 1}`, target: `10.0.0.${i + 1}:5432`, state })),
});

describe('mirror invariant monitor', () => {
  it('one healthy target is ok; two is split brain at once, with the evidence, alarmed once per episode', () => {
    const m = createMirrorMonitor({ probeIntervalMs: 5000 });
    expect(m.update(obs('healthy', 'unhealthy'), 0)).toEqual({ status: { verdict: 'ok', healthy: ['node1'], message: 'one healthy target: node1' }, alarm: undefined });
    const r = m.update(obs('healthy', 'healthy'), 1000);
    expect(r.status.verdict).toBe('split-brain');
    expect(r.alarm).toMatchObject({ type: 'split-brain', cluster: 'demo', module: 'mirror', since: 1000, at: 1000, evidence: obs('healthy', 'healthy').targets });
    expect(r.alarm!.message).toMatch(/2 targets healthy at once \(node1, node2\)/);
    expect(m.update(obs('healthy', 'healthy'), 6000).alarm).toBeUndefined();
    const back = m.update(obs('unhealthy', 'healthy'), 7000);
    expect(back.alarm).toMatchObject({ type: 'recovered', since: 1000, message: expect.stringMatching(/\(node2\) after split-brain for 6000 ms/) });
  });

  it('no healthy target alarms only after more than N probe intervals', () => {
    const m = createMirrorMonitor({ probeIntervalMs: 5000, noHealthyProbes: 3 });
    expect(m.update(obs('unhealthy', 'unhealthy'), 0)).toMatchObject({ status: { verdict: 'degraded' }, alarm: undefined });
    expect(m.update(obs('unhealthy', 'initial'), 15_000).alarm).toBeUndefined(); // exactly N intervals: not yet
    const r = m.update(obs('unhealthy', 'unhealthy'), 15_001);
    expect(r.status.verdict).toBe('no-healthy');
    expect(r.alarm).toMatchObject({ type: 'no-healthy', since: 0, message: expect.stringMatching(/no healthy target for 15001 ms \(3\.0 probe intervals\): node1=unhealthy, node2=unhealthy/) });
    // a failover that completes within N probes never alarms
    const f = createMirrorMonitor({ probeIntervalMs: 5000, noHealthyProbes: 3 });
    f.update(obs('unhealthy', 'unhealthy'), 0);
    expect(f.update(obs('unhealthy', 'healthy'), 10_000)).toMatchObject({ status: { verdict: 'ok' }, alarm: undefined });
  });
});

describe('shared probe settings', () => {
  it('AWS: HTTP on the node service port, exact 200, 5 s, 2/2; NLB-only attributes kept off ALB target groups', () => {
    const s = probeSettings({ module: 'mirror', mode: 'mirror', healthPort: 9010 });
    expect(s.aws).toMatchObject({ healthCheckProtocol: 'HTTP', healthCheckPort: '9010', healthCheckPath: '/var/modules/mirror/ready.txt', matcher: { HttpCode: '200' }, healthCheckIntervalSeconds: 5, healthCheckTimeoutSeconds: 2, healthyThresholdCount: 2, unhealthyThresholdCount: 2 });
    expect(s.aws.healthCheckTimeoutSeconds).toBeLessThan(s.aws.healthCheckIntervalSeconds);
    expect(awsTargetGroupAttributes(s.aws, 'TCP')).toEqual({
      'deregistration_delay.timeout_seconds': '5',
      'deregistration_delay.connection_termination.enabled': 'true',
      'target_health_state.unhealthy.connection_termination.enabled': 'true',
      'load_balancing.cross_zone.enabled': 'true',
    });
    expect(awsTargetGroupAttributes(s.aws, 'HTTP')).toEqual({ 'deregistration_delay.timeout_seconds': '5', 'load_balancing.cross_zone.enabled': 'true' });
    expect(probeSettings({ module: 'web', mode: 'farm', healthPort: 9010 }).aws.attributes).toEqual({ 'deregistration_delay.timeout_seconds': '5' });
  });

  it('Azure: Http probe, 5 s (the minimum), threshold 2, AllProbedDown for mirror only; GCP: 1 s, failover policy for mirror only', () => {
    const m = probeSettings({ module: 'mirror', mode: 'mirror', healthPort: 9010 });
    const f = probeSettings({ module: 'web', mode: 'farm', healthPort: 9010 });
    expect(m.azure).toMatchObject({ protocol: 'Http', port: 9010, requestPath: '/var/modules/mirror/ready.txt', intervalInSeconds: 5, probeThreshold: 2, noHealthyBackendsBehavior: 'AllProbedDown' });
    expect(f.azure.noHealthyBackendsBehavior).toBe('AllProbedUp');
    expect(m.gcp).toMatchObject({ type: 'HTTP', checkIntervalSec: 1, timeoutSec: 1, healthyThreshold: 2, unhealthyThreshold: 2, failoverPolicy: { dropTrafficIfUnhealthy: true, failoverRatio: 0 } });
    expect(m.gcp.timeoutSec).toBeLessThanOrEqual(m.gcp.checkIntervalSec);
    expect(f.gcp.failoverPolicy).toBeUndefined();
    expect(m.gcp.probeSourceRanges).toEqual(expect.arrayContaining(['35.191.0.0/16', '130.211.0.0/22']));
  });
});
