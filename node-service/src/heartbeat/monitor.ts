import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { NodeConfig } from '../config/types.ts';
import type { PeerView } from '../core/types.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { DatagramKeys } from '../secure/keyring.ts';
import { decodeHeartbeat, encodeHeartbeat, type Heartbeat } from './packet.ts';
import { monotonic } from '../clock.ts';

export type Advert = Omit<PeerView, 'node' | 'fresh'>;

export interface MonitorOptions {
  readonly cluster: string;
  readonly module: string;
  readonly self: NodeConfig;
  readonly peers: readonly NodeConfig[];
  readonly port: number;
  readonly pulseMs: number;
  /** seal our datagrams and open the peers' (secure/keyring.ts datagramKeys) */
  readonly keys: DatagramKeys;
  readonly counterBase: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** monotonic milliseconds */
  readonly now?: () => number;
}


interface PeerTrack {
  highest: number;
  /** the newest view received and not yet reported */
  pending?: PeerView;
  reportScheduled: boolean;
}

/**
 * Heartbeats on every configured network: sends ours, and reports every valid heartbeat it hears
 * (authenticated, from a configured peer's address, never replayed). What that means, a peer alive,
 * returning or lost, is decided in the core (core/liveness.ts) on its ticks.
 */
export class HeartbeatMonitor {
  private readonly sockets: Socket[] = [];
  private readonly tracks = new Map<string, PeerTrack>();
  private counter: number;
  private advert: Advert | undefined;
  private sendTimer?: NodeJS.Timeout;
  private readonly now: () => number;
  private heardCb: (v: PeerView) => void = () => {};
  /** when a refused sender was last logged (once a minute per address: a misconfigured peer sends ten a second) */
  private readonly refusedLogged = new Map<string, number>();

  constructor(private readonly o: MonitorOptions) {
    this.counter = o.counterBase;
    this.now = o.now ?? monotonic;
    for (const p of o.peers) this.tracks.set(p.name, { highest: -1, reportScheduled: false });
  }

  /** every valid heartbeat heard (the newest of those read in one go) */
  onHeard(cb: (v: PeerView) => void): void {
    this.heardCb = cb;
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
    track.pending = view;
    if (track.reportScheduled) return;
    track.reportScheduled = true;
    // a burst (a link that comes back, our own stall) is read whole, and only its newest view reported
    setImmediate(() => {
      track.reportScheduled = false;
      const v = track.pending;
      track.pending = undefined;
      if (v) this.heardCb(v);
    });
  }

  async stop(): Promise<void> {
    clearInterval(this.sendTimer);
    await Promise.all(this.sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
