import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { NodeConfig } from '../config/types.ts';
import type { PeerView } from '../core/types.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { DatagramKeys } from '../secure/keyring.ts';
import { decodeHeartbeat, encodeHeartbeat, type Heartbeat } from './packet.ts';

export type Advert = Omit<PeerView, 'node' | 'fresh'>;

export interface MonitorOptions {
  readonly cluster: string;
  readonly module: string;
  readonly self: NodeConfig;
  readonly peers: readonly NodeConfig[];
  readonly port: number;
  readonly pulseMs: number;
  readonly timeoutMs: number;
  /** seal our datagrams and open the peers' (secure/keyring.ts datagramKeys) */
  readonly keys: DatagramKeys;
  readonly counterBase: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** monotonic milliseconds */
  readonly now?: () => number;
}

interface PeerTrack {
  lastRecv: number;
  highest: number;
  alive: boolean;
  view?: PeerView;
  viewKey: string;
  /** the core was told this peer is gone (also when it was never heard since start) */
  reportedLost: boolean;
  /** the newest view received and not yet handed to the core */
  pending?: PeerView;
  deliverScheduled: boolean;
}

const monotonic = () => Number(process.hrtime.bigint() / 1_000_000n);

/**
 * Heartbeats on every configured network. A peer is lost when no valid heartbeat arrived on any
 * network for `timeout`. Staleness is measured from receive times, and a check that runs late (our
 * own loop stalled: GC, CPU load) first lets the queued datagrams be read, so a stall here never
 * reads as silence there.
 */
export class HeartbeatMonitor {
  private readonly sockets: Socket[] = [];
  private readonly tracks = new Map<string, PeerTrack>();
  private counter: number;
  private advert: Advert | undefined;
  private sendTimer?: NodeJS.Timeout;
  private checkTimer?: NodeJS.Timeout;
  private lastCheck = 0;
  private readonly startedAt: number;
  private readonly now: () => number;
  private peerCb: (v: PeerView) => void = () => {};
  /** when a refused sender was last logged (once a minute per address: a misconfigured peer sends ten a second) */
  private readonly refusedLogged = new Map<string, number>();
  private lostCb: (node: string) => void = () => {};

  constructor(private readonly o: MonitorOptions) {
    this.counter = o.counterBase;
    this.now = o.now ?? monotonic;
    this.startedAt = this.now();
    for (const p of o.peers) this.tracks.set(p.name, { lastRecv: -Infinity, highest: -1, alive: false, viewKey: '', reportedLost: false, deliverScheduled: false });
  }

  onPeer(cb: (v: PeerView) => void): void {
    this.peerCb = cb;
  }
  onLost(cb: (node: string) => void): void {
    this.lostCb = cb;
  }

  async start(): Promise<void> {
    await Promise.all(
      this.o.self.addrs.map(
        (addr, net) =>
          new Promise<void>((resolve, reject) => {
            const s = createSocket({ type: isIPv6(addr) ? 'udp6' : 'udp4', reuseAddr: false });
            s.on('message', (msg, rinfo) => this.receive(msg, rinfo.address, net));
            s.on('error', (e) => this.o.log.error({ err: e.message, addr, port: this.o.port }, 'heartbeat socket error'));
            s.once('listening', () => resolve());
            s.once('error', reject);
            s.bind(this.o.port, addr);
            this.sockets[net] = s;
          }),
      ),
    );
    this.sendTimer = setInterval(() => this.sendNow(), this.o.pulseMs);
    const checkEvery = Math.max(10, Math.min(this.o.pulseMs / 2, this.o.timeoutMs / 10));
    this.lastCheck = this.now();
    this.checkTimer = setInterval(() => setImmediate(() => this.check(checkEvery)), checkEvery);
  }

  setAdvert(a: Advert): void {
    this.advert = a;
  }

  sendNow(): void {
    if (!this.advert) return;
    for (const [net, s] of this.sockets.entries()) {
      const hb: Heartbeat = {
        v: 1,
        cluster: this.o.cluster,
        module: this.o.module,
        node: this.o.self.name,
        net,
        counter: this.counter++,
        state: this.advert.state,
        target: this.advert.target,
        gen: this.advert.gen,
        epoch: this.advert.primaryEpoch,
        inSync: this.advert.inSync,
        handover: this.advert.handover,
        swapRequest: this.advert.swapRequest,
        isolated: this.advert.isolated,
      };
      const buf = encodeHeartbeat(hb, this.o.keys.seal(this.o.self.name));
      for (const p of this.o.peers) {
        const to = p.addrs[net];
        if (to) s.send(buf, this.o.port, to, (err) => err && this.o.log.debug({ err: err.message, to }, 'heartbeat send failed'));
      }
    }
  }

  /** peers currently alive with their last advertised view */
  alive(): PeerView[] {
    return [...this.tracks.values()].filter((t) => t.alive && t.view).map((t) => t.view!);
  }

  private drop(reason: string): void {
    this.o.metrics.heartbeatsDropped.inc({ module: this.o.module, reason });
  }

  private refused(from: string, node: string | undefined, reason: 'bad_key' | 'bad_mac'): void {
    const now = this.now();
    if (now - (this.refusedLogged.get(from) ?? -Infinity) < 60_000) return;
    this.refusedLogged.set(from, now);
    const why = reason === 'bad_key' ? 'sealed with a secret this node does not hold (a peer with the wrong secret_file, or a rotation not finished)' : 'does not authenticate (tampered, or a wrong key)';
    this.o.log.warn({ module: this.o.module, from, claimedNode: node, reason }, `datagram from ${from} refused: ${why}`);
  }

  private receive(msg: Buffer, from: string, net: number): void {
    const r = decodeHeartbeat(msg, (id, node) => this.o.keys.open(id, node));
    if (!r.ok) {
      if (r.reason !== 'malformed') this.refused(from, r.node, r.reason);
      return this.drop(r.reason);
    }
    const hb = r.hb;
    if (hb.cluster !== this.o.cluster) return this.drop('wrong_cluster');
    if (hb.module !== this.o.module) return this.drop('wrong_module');
    const track = this.tracks.get(hb.node);
    const peer = this.o.peers.find((p) => p.name === hb.node);
    if (!track || !peer || !peer.addrs.includes(from)) return this.drop('unknown_node');
    if (hb.counter <= track.highest) return this.drop('replay');
    track.highest = hb.counter;
    track.lastRecv = this.now();
    this.o.metrics.heartbeatsReceived.inc({ module: this.o.module, peer: hb.node, net: String(net) });
    const view: PeerView = {
      node: hb.node,
      state: hb.state,
      target: hb.target,
      gen: hb.gen,
      primaryEpoch: hb.epoch,
      inSync: hb.inSync,
      handover: hb.handover,
      swapRequest: hb.swapRequest,
      isolated: hb.isolated,
      fresh: hb.gen === 0 && !hb.inSync,
    };
    track.reportedLost = false;
    track.pending = view;
    if (track.deliverScheduled) return;
    track.deliverScheduled = true;
    // A link that comes back releases, all at once, the heartbeats the peer sent while it was cut
    // (queued behind ARP resolution), oldest first: acting on those would mean acting on what the
    // peer was, not what it is. So a returning peer is believed one pulse after it is heard again,
    // and a live peer's burst is read whole before its newest view is handed over.
    const deliver = () => {
      track.deliverScheduled = false;
      this.deliver(track);
    };
    if (track.alive) setImmediate(deliver);
    else setTimeout(deliver, this.o.pulseMs);
  }

  private deliver(track: PeerTrack): void {
    const view = track.pending;
    track.pending = undefined;
    if (!view || track.reportedLost) return;
    const key = JSON.stringify(view);
    const wasAlive = track.alive;
    track.alive = true;
    this.o.metrics.peerAlive.set({ module: this.o.module, peer: view.node }, 1);
    if (!wasAlive || key !== track.viewKey) {
      track.view = view;
      track.viewKey = key;
      if (!wasAlive) this.o.log.info({ module: this.o.module, peer: view.node, state: view.state }, 'peer heartbeats received');
      this.peerCb(view);
    }
  }

  private check(every: number): void {
    const now = this.now();
    const lag = Math.max(0, now - this.lastCheck - every);
    this.lastCheck = now;
    this.o.metrics.loopLag.set(lag / 1000);
    for (const [name, t] of this.tracks) {
      const silentFor = now - (Number.isFinite(t.lastRecv) ? t.lastRecv : this.startedAt);
      // After a stall of our own, the datagrams that arrived meanwhile were read just before this
      // check (setImmediate runs after the poll phase); if the stall itself was longer than the
      // timeout, wait one more pulse so the peer gets a chance to be heard.
      if (lag > this.o.timeoutMs / 2) continue;
      if (silentFor <= this.o.timeoutMs || t.reportedLost) continue;
      if (t.alive) {
        this.o.metrics.peerLost.inc({ module: this.o.module, peer: name });
        this.o.metrics.peerAlive.set({ module: this.o.module, peer: name }, 0);
        this.o.log.warn({ module: this.o.module, peer: name, silentMs: silentFor }, 'peer lost: no valid heartbeat on any network');
      } else {
        this.o.log.info({ module: this.o.module, peer: name }, 'peer not heard since start');
      }
      t.alive = false;
      t.reportedLost = true;
      t.view = undefined;
      t.viewKey = '';
      this.lostCb(name);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.sendTimer);
    clearInterval(this.checkTimer);
    await Promise.all(this.sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
