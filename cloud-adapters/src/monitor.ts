/**
 * Mirror invariant monitor: a mirror module must have exactly one target the load balancer calls
 * healthy. Fed with successive observe() results (time passed in, no clock read here), it raises
 *   split-brain  more than one healthy target (as the load balancer sees it) for `splitBrainProbes` probes
 *   no-healthy   no healthy target for longer than `noHealthyProbes` probe intervals
 * once per episode, with the evidence, and a `recovered` event when the invariant holds again.
 */
import type { NodeHealth, Observation } from './types.ts';

export type Verdict = 'ok' | 'split-brain' | 'no-healthy' | 'degraded' | 'unknown';

export interface AlarmEvent {
  readonly type: 'split-brain' | 'no-healthy' | 'recovered';
  readonly cluster: string;
  readonly module: string;
  readonly cloud: string;
  /** ms: when the condition was first seen, and now */
  readonly since: number;
  readonly at: number;
  /** one sentence an operator can act on */
  readonly message: string;
  /** every target's state at `at`, as the load balancer reported it */
  readonly evidence: readonly NodeHealth[];
}

export interface MonitorOptions {
  /** the load balancer's probe interval, ms (probeSettings().aws.healthCheckIntervalSeconds * 1000, ...) */
  readonly probeIntervalMs: number;
  /** N: alarm when no target has been healthy for longer than N probe intervals (default 3) */
  readonly noHealthyProbes?: number;
  /** alarm when more than one target has been healthy for this many probe intervals (default 0: at once) */
  readonly splitBrainProbes?: number;
}

export interface MonitorStatus {
  readonly verdict: Verdict;
  readonly healthy: readonly string[];
  readonly since?: number;
  readonly message: string;
}

export interface MirrorMonitor {
  /** feed one observation taken at `now` (ms); returns the alarm raised by it, if any */
  update(obs: Observation, now: number): { status: MonitorStatus; alarm?: AlarmEvent };
  status(): MonitorStatus;
}

type Episode = { kind: 'split-brain' | 'no-healthy'; since: number; alarmed: boolean };

export function createMirrorMonitor(opts: MonitorOptions): MirrorMonitor {
  const noHealthyMs = (opts.noHealthyProbes ?? 3) * opts.probeIntervalMs;
  const splitMs = (opts.splitBrainProbes ?? 0) * opts.probeIntervalMs;
  let episode: Episode | undefined;
  let last: MonitorStatus = { verdict: 'unknown', healthy: [], message: 'not observed yet' };

  function update(obs: Observation, now: number): { status: MonitorStatus; alarm?: AlarmEvent } {
    const healthy = obs.targets.filter((t) => t.state === 'healthy').map((t) => t.node);
    const kind: Episode['kind'] | undefined = healthy.length > 1 ? 'split-brain' : healthy.length === 0 ? 'no-healthy' : undefined;
    const base = { cluster: obs.cluster, module: obs.module, cloud: obs.cloud, at: now, evidence: obs.targets };
    let alarm: AlarmEvent | undefined;

    if (!kind) {
      if (episode?.alarmed) {
        alarm = { ...base, type: 'recovered', since: episode.since, message: `exactly one healthy target again (${healthy[0]}) after ${episode.kind} for ${now - episode.since} ms` };
      }
      episode = undefined;
      last = { verdict: 'ok', healthy, message: `one healthy target: ${healthy[0]}` };
      return { status: last, alarm };
    }
    if (!episode || episode.kind !== kind) episode = { kind, since: now, alarmed: false };
    const lasted = now - episode.since;
    const limit = kind === 'split-brain' ? splitMs : noHealthyMs;
    const over = kind === 'split-brain' ? lasted >= limit : lasted > limit;
    const describe =
      kind === 'split-brain'
        ? `${healthy.length} targets healthy at once (${healthy.join(', ')}): the load balancer sends traffic to more than one primary`
        : `no healthy target for ${lasted} ms (${(lasted / opts.probeIntervalMs).toFixed(1)} probe intervals): ${obs.targets.map((t) => `${t.node}=${t.state}`).join(', ') || 'no targets registered'}`;
    if (over && !episode.alarmed) {
      episode.alarmed = true;
      alarm = { ...base, type: kind, since: episode.since, message: describe };
    }
    last = { verdict: over ? kind : 'degraded', healthy, since: episode.since, message: describe };
    return { status: last, alarm };
  }

  return { update, status: () => last };
}
