import { DEFAULT_PULSE_MS, DEFAULT_TIMEOUT_MS } from '../config/defaults.ts';
import type { Action, PeerView } from './types.ts';

/**
 * Who is alive, decided in the core from what the heartbeat edge heard (issue 16, item 3). The edge
 * only reports each valid heartbeat (`heard`, the newest of a burst read in one go); ticks bring the
 * time. The rules, formerly in heartbeat/monitor.ts:
 *   - a peer is lost when nothing was heard from it for `timeout` (from boot, for a peer never heard);
 *   - a tick that comes late by more than half the timeout (our own loop stalled: GC, CPU) decides
 *     nothing: the datagrams that arrived meanwhile are read first, and the peer gets one more tick;
 *   - a returning peer is believed one pulse after it is heard again, with the newest view heard by
 *     then: a link that comes back releases, all at once, what the peer sent while it was cut
 *     (queued behind ARP), and acting on that would mean acting on what the peer was, not what it is;
 *   - a live peer's changed view is taken at once.
 */
export interface LivenessConfig {
  readonly pulseMs: number;
  readonly timeoutMs: number;
}

/** the config's heartbeat defaults, for a core built without them (tests, the simulator) */
export const DEFAULT_LIVENESS: LivenessConfig = { pulseMs: DEFAULT_PULSE_MS, timeoutMs: DEFAULT_TIMEOUT_MS };

export interface PeerTrack {
  readonly lastHeard: number;
  /** the first heartbeat after a silence: the peer is believed from heardSince + pulse */
  readonly heardSince?: number;
  /** the newest view heard */
  readonly newest?: PeerView;
  readonly alive: boolean;
  readonly reportedLost: boolean;
  /** the view last handed to the decisions */
  readonly view?: PeerView;
}

export interface Liveness {
  readonly cfg: LivenessConfig;
  readonly startedAt: number;
  readonly lastTick?: number;
  readonly peers: Readonly<Record<string, PeerTrack>>;
}

/** What the decisions learn: a peer (re)appeared or changed, or went silent. */
export type PeerNews = { readonly type: 'peer'; readonly view: PeerView } | { readonly type: 'peerLost'; readonly node: string; readonly silentMs: number; readonly everHeard: boolean };

/** The news told to the edge (replication, metrics, the log) as a `peerView` action. */
export const newsAction = (n: PeerNews): Action =>
  n.type === 'peer' ? { type: 'peerView', node: n.view.node, view: n.view } : { type: 'peerView', node: n.node, silentMs: n.silentMs, everHeard: n.everHeard };

const FRESH_TRACK: PeerTrack = { lastHeard: -Infinity, alive: false, reportedLost: false };

export function initLiveness(peers: readonly string[], cfg: LivenessConfig): Liveness {
  return { cfg, startedAt: 0, peers: Object.fromEntries(peers.map((p) => [p, FRESH_TRACK])) };
}

export const livenessBoot = (l: Liveness, now: number): Liveness => ({ ...l, startedAt: now, lastTick: undefined, peers: Object.fromEntries(Object.keys(l.peers).map((p) => [p, FRESH_TRACK])) });

const sameView = (a: PeerView | undefined, b: PeerView | undefined): boolean => JSON.stringify(a) === JSON.stringify(b);

/** A valid heartbeat from a configured peer. */
export function heard(l: Liveness, view: PeerView, now: number): { l: Liveness; news: PeerNews[] } {
  const t = l.peers[view.node];
  if (!t) return { l, news: [] };
  if (t.alive) {
    const next: PeerTrack = { ...t, lastHeard: now, newest: view, reportedLost: false, view };
    return { l: withTrack(l, view.node, next), news: sameView(view, t.view) ? [] : [{ type: 'peer', view }] };
  }
  return { l: withTrack(l, view.node, { ...t, lastHeard: now, newest: view, reportedLost: false, heardSince: t.heardSince ?? now }), news: [] };
}

/** Time passes: returning peers become believed, silent ones are lost. */
export function livenessTick(l: Liveness, now: number): { l: Liveness; news: PeerNews[] } {
  const lag = l.lastTick === undefined ? 0 : Math.max(0, now - l.lastTick - l.cfg.pulseMs);
  const news: PeerNews[] = [];
  const peers: Record<string, PeerTrack> = {};
  for (const [node, t] of Object.entries(l.peers)) {
    let n = t;
    if (!n.alive && n.heardSince !== undefined && n.newest && now - n.heardSince >= l.cfg.pulseMs) {
      n = { ...n, alive: true, heardSince: undefined, view: n.newest };
      news.push({ type: 'peer', view: n.newest! });
    }
    const silentMs = now - (Number.isFinite(n.lastHeard) ? n.lastHeard : l.startedAt);
    if (lag <= l.cfg.timeoutMs / 2 && silentMs > l.cfg.timeoutMs && !n.reportedLost) {
      news.push({ type: 'peerLost', node, silentMs, everHeard: Number.isFinite(n.lastHeard) });
      n = { ...n, alive: false, reportedLost: true, heardSince: undefined, view: undefined };
    }
    peers[node] = n;
  }
  return { l: { ...l, lastTick: now, peers }, news };
}

/** the views of the peers alive now */
export const alivePeers = (l: Liveness): PeerView[] => Object.values(l.peers).flatMap((t) => (t.alive && t.view ? [t.view] : []));

function withTrack(l: Liveness, node: string, t: PeerTrack): Liveness {
  return { ...l, peers: { ...l.peers, [node]: t } };
}
