import type { Server, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../log/logger.ts';
import type { Applier } from './apply.ts';
import type { Excludes } from './excludes.ts';
import { acceptPrimary, Channel } from './channel.ts';
import { channelKey, isPlain, plainServer, replicationRing, secureServer } from './secure-socket.ts';
import { buildManifest, type Entry } from './manifest.ts';
import { decodeToSecondary, encodeToPrimary, type FsyncOp, type Op } from './ops.ts';
import type { Frame } from './protocol.ts';
import type { Tracking } from './tracking.ts';
import type { MirrorEvent, MirrorReplicatorOptions, MirrorStatus } from './types.ts';

/** One received operation, or the reason it was refused (acknowledged as a failure, in order). */
type Received = ({ q: number; op: Op; bad?: undefined } | { q: number; bad: string }) & { release?: () => void };

const ACK_BYTES = 1 << 20;

/** What the secondary role needs from the engine that owns it. */
export interface SecondaryContext {
  readonly opts: MirrorReplicatorOptions;
  readonly log: Logger;
  readonly tracking: Tracking;
  readonly applier: Applier;
  readonly backings: string[];
  /** what the module leaves out of replication: not listed for the primary, so never removed here */
  readonly excludes: Excludes;
  readonly sendTimeout: number;
  /** false once the engine moved on (another role, stop): loops end, late connections are refused */
  current(): boolean;
  persist(force: boolean): Promise<void>;
  setInResync(v: boolean): void;
  emit(e: MirrorEvent): void;
}

/**
 * The secondary side of one mirror module: listens for the primary, authenticates it, answers its
 * manifest request and applies its operations in sequence order. Acknowledgements are cumulative: "up
 * to q" means every operation up to q is applied and every fsync up to q is on disk. An fsync does not
 * stop the operations behind it from being applied (the disk syncs while the stream goes on), and
 * several fsyncs in flight complete together (one journal commit, one acknowledgement).
 */
export class SecondaryRole {
  peer: MirrorStatus['peer'] = 'disconnected';
  /** every accepted replication socket, so that leaving the role never waits on a dead peer */
  private readonly inboundSockets = new Set<Socket>();
  private servers: Server[] = [];
  private inbound: Channel | null = null;
  private applyQueue: Received[] = [];
  private applying = false;
  private lastInbound = 0;
  /** highest sequence applied, highest acknowledged, fsyncs still running, failures not yet reported */
  private applied = 0;
  private ackedSeq = 0;
  private readonly syncing = new Set<number>();
  private errs: [number, string][] = [];

  constructor(
    private readonly ctx: SecondaryContext,
    private readonly roleOpts: { fullSync?: boolean; divergent?: boolean },
  ) {}


  /** listens on the replication port until the role ends */
  async listen(): Promise<void> {
    const port = this.ctx.opts.module.ports.replication;
    const addrs = this.ctx.opts.self.addrs.length ? this.ctx.opts.self.addrs : ['0.0.0.0'];
    let warned = false;
    for (const host of addrs) {
      while (this.ctx.current()) {
        const onSocket = (socket: Socket) => {
          this.inboundSockets.add(socket);
          socket.once('close', () => this.inboundSockets.delete(socket));
          this.onInbound(new Channel(socket));
        };
        const server = isPlain(this.ctx.opts.module)
          ? plainServer(onSocket)
          : secureServer({ ring: replicationRing(this.ctx.opts), module: this.ctx.opts.module.name, onSocket, refused: (from, reason) => this.ctx.log.warn({ from, reason }, 'replication peer refused') });
        try {
          await new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen({ host, port, exclusive: true }, () => resolve());
          });
          server.on('error', (err) => this.ctx.log.error({ err }, 'replication listener error'));
          if (!this.ctx.current()) {
            server.close();
            return;
          }
          this.servers.push(server);
          break;
        } catch (e) {
          if (!warned) this.ctx.log.warn({ host, port, reason: (e as Error).message }, 'cannot listen for the primary yet; retrying');
          warned = true;
          await sleep(500);
        }
      }
    }
    // idle detection: the primary sends at least a nop every send_timeout/4
    while (this.ctx.current()) {
      await sleep(Math.max(20, Math.min(250, this.ctx.sendTimeout / 4)));
      const ch = this.inbound;
      if (ch && !this.applying && this.applyQueue.length === 0 && Date.now() - this.lastInbound > this.ctx.sendTimeout) ch.close(`no frame from the primary for ${this.ctx.sendTimeout} ms`);
    }
  }

  private onInbound(ch: Channel): void {
    const report = () => ({
      id: this.ctx.tracking.baseline,
      clean: this.ctx.tracking.intact && this.ctx.tracking.isEmpty(),
      full: !!this.roleOpts.fullSync,
      div: !!this.roleOpts.divergent,
    });
    ch.onClose = () => undefined;
    const key = isPlain(this.ctx.opts.module) ? replicationRing(this.ctx.opts).sending.secret.key : channelKey(ch.socket as TLSSocket);
    void acceptPrimary(ch, { key, module: this.ctx.opts.module.name, node: this.ctx.opts.self.name, report }).then((r) => {
      if (!r.ok) {
        this.ctx.log.warn({ from: ch.socket.remoteAddress, reason: r.reason }, 'replication peer refused');
        return;
      }
      if (!this.ctx.current()) {
        ch.close('not secondary');
        return;
      }
      const old = this.inbound;
      if (old) {
        old.onClose = () => undefined;
        old.close('replaced by a new connection from the primary');
      }
      this.inbound = ch;
      this.applyQueue = [];
      this.applied = 0;
      this.ackedSeq = 0;
      this.syncing.clear();
      this.errs = [];
      this.lastInbound = Date.now();
      this.peer = 'connected';
      this.ctx.log.info({ peer: r.peer, from: ch.socket.remoteAddress }, 'primary connected');
      ch.onClose = (reason) => {
        if (this.inbound !== ch) return;
        this.inbound = null;
        this.applyQueue = [];
        this.peer = 'disconnected';
        this.ctx.log.warn({ reason }, 'replication stream from the primary lost');
        this.ctx.persist(true).catch((err) => this.ctx.log.error({ err }, 'cannot persist mirror state'));
        this.ctx.emit({ type: 'lost', reason });
      };
      ch.start((f) => this.onSecondaryFrame(ch, f));
    });
  }

  private onSecondaryFrame(ch: Channel, f: Frame): void {
    if (this.inbound !== ch) return;
    this.lastInbound = Date.now();
    let m;
    try {
      m = decodeToSecondary(f);
    } catch (e) {
      // a malformed operation is refused in its place in the stream; without a sequence number the
      // stream itself is broken
      const q = f.h.q;
      if (typeof q !== 'number' || !Number.isSafeInteger(q) || q <= this.applied) return ch.close(`malformed frame: ${(e as Error).message}`);
      m = { t: 'bad' as const, q, reason: (e as Error).message };
    }
    if (m.t === 'manifest-req') {
      this.sendManifest(ch).catch((err) => ch.close(`cannot list the tree for the primary: ${(err as Error).message}`));
      return;
    }
    this.applyQueue.push(m.t === 'op' ? { q: m.q, op: m.op, release: f.release } : { q: m.q, bad: m.reason, release: f.release });
    if (!this.applying) void this.pump(ch);
  }

  private async sendManifest(ch: Channel): Promise<void> {
    this.peer = 'resyncing';
    let batch: Entry[] = [];
    let bytes = 0;
    await buildManifest(this.ctx.backings, this.ctx.tracking.zoneSize, (e) => {
      batch.push(e);
      bytes += 80 + e.k.length + (e.h?.length ?? 0) * 19 + (e.tg?.length ?? 0);
      if (bytes > 128 * 1024) {
        ch.send(encodeToPrimary({ t: 'manifest', e: batch, end: false }));
        batch = [];
        bytes = 0;
      }
      this.lastInbound = Date.now();
    }, this.ctx.excludes);
    ch.send(encodeToPrimary({ t: 'manifest', e: batch, end: true }));
  }

  /**
   * Applies queued operations in order. Acknowledges when the queue is empty, every 64 operations or
   * 1 MiB (the primary's window must keep moving while a stream never lets the queue drain), and when an
   * fsync completes.
   */
  private async pump(ch: Channel): Promise<void> {
    this.applying = true;
    let sinceAck = 0;
    let bytesSinceAck = 0;
    try {
      while (this.inbound === ch && this.applyQueue.length > 0) {
        const r = this.applyQueue.shift()!;
        if (r.bad !== undefined) this.failed(r.q, r.bad);
        else if (r.op.t === 'fsync') {
          const q = r.q;
          // nothing behind it and no other sync running (one writer syncing): the sync runs right here,
          // without a thread-pool round trip; otherwise in the background, so that the operations behind
          // it are applied while the disk works and concurrent syncs overlap
          if (this.applyQueue.length === 0 && this.syncing.size === 0 && this.syncHere(q, r.op)) {
            // acknowledged below, with everything applied before it
          } else {
            this.syncing.add(q);
            this.ctx.applier.apply(r.op).then(
              () => this.syncDone(ch, q),
              (e) => (this.failed(q, e), this.syncDone(ch, q)),
            );
          }
        } else {
          if (r.op.t === 'write' || r.op.t === 'data') bytesSinceAck += r.op.data.length;
          try {
            await this.applyOne(r.op);
          } catch (e) {
            this.failed(r.q, e);
          }
          // its bytes are written: the frame's buffer may take the next one
          r.release?.();
        }
        this.applied = r.q;
        if (this.applyQueue.length === 0 || ++sinceAck >= 64 || bytesSinceAck >= ACK_BYTES) {
          this.ack(ch);
          sinceAck = 0;
          bytesSinceAck = 0;
        }
        this.lastInbound = Date.now();
      }
    } finally {
      this.applying = false;
    }
  }

  private failed(q: number, e: unknown): void {
    const code = typeof e === 'string' ? e : ((e as NodeJS.ErrnoException).code ?? (e as Error).message);
    this.errs.push([q, code]);
    this.ctx.log.debug({ seq: q, code }, 'could not apply');
  }

  /** the sync of a file being written, on the event loop: false when it needs the asynchronous path */
  private syncHere(q: number, op: FsyncOp): boolean {
    try {
      return this.ctx.applier.syncNow(op);
    } catch (e) {
      this.failed(q, e);
      return true;
    }
  }

  private syncDone(ch: Channel, q: number): void {
    this.syncing.delete(q);
    if (this.inbound === ch) this.ack(ch);
  }

  /** acknowledges up to the last operation applied, but never past an fsync still running */
  private ack(ch: Channel): void {
    let upTo = this.applied;
    for (const q of this.syncing) if (q <= upTo) upTo = q - 1;
    if (upTo <= this.ackedSeq) return;
    this.ackedSeq = upTo;
    const e = this.errs.filter(([q]) => q <= upTo);
    if (e.length) this.errs = this.errs.filter(([q]) => q > upTo);
    ch.send(encodeToPrimary({ t: 'ack', q: upTo, e }));
  }

  private async applyOne(op: Op): Promise<void> {
    if (op.t === 'base') {
      this.ctx.tracking.clear(op.id);
      this.ctx.setInResync(true);
      this.peer = 'resyncing';
      await this.ctx.persist(true);
      return;
    }
    if (op.t === 'synced') {
      if (op.id !== this.ctx.tracking.baseline) throw new Error('synced for another base');
      // what the resync wrote is on the disk before this node may take over (and before the
      // acknowledgement lets the primary call the pair in sync)
      const t0 = performance.now();
      await this.ctx.applier.syncAll();
      const syncMs = Math.round(performance.now() - t0);
      this.ctx.setInResync(false);
      await this.ctx.persist(true);
      this.peer = 'synced';
      this.ctx.log.info({ baseline: op.id, syncMs }, 'in sync with the primary (what the resync wrote is on disk)');
      this.ctx.emit({ type: 'synced' });
      return;
    }
    await this.ctx.applier.apply(op);
  }

  /** ends the role: the primary's connection first (server.close() waits for open connections, and one whose peer vanished would never end) */
  async leave(): Promise<void> {
    const ch = this.inbound;
    this.inbound = null;
    if (ch) {
      ch.onClose = () => undefined;
      ch.close('role change');
    }
    for (const sock of this.inboundSockets) sock.destroy();
    this.inboundSockets.clear();
    for (const s of this.servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
    while (this.applying) await sleep(5);
    this.applyQueue = [];
    this.peer = 'disconnected';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
