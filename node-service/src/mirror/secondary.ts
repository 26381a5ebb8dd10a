import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../log/logger.ts';
import type { Applier } from './apply.ts';
import { acceptPrimary, Channel } from './channel.ts';
import { buildManifest, type Entry } from './manifest.ts';
import type { Frame } from './protocol.ts';
import type { MirrorEvent, MirrorReplicatorOptions, MirrorStatus } from './replicator.ts';
import type { Tracking } from './tracking.ts';

/** What the secondary role needs from the engine that owns it. */
export interface SecondaryContext {
  readonly opts: MirrorReplicatorOptions;
  readonly log: Logger;
  readonly tracking: Tracking;
  readonly applier: Applier;
  readonly backings: string[];
  readonly sendTimeout: number;
  /** false once the engine moved on (another role, stop): loops end, late connections are refused */
  current(): boolean;
  persist(force: boolean): Promise<void>;
  setInResync(v: boolean): void;
  emit(e: MirrorEvent): void;
}

/**
 * The secondary side of one mirror module: listens for the primary, authenticates it, answers its
 * manifest request and applies its frames in sequence order, acknowledging each batch after applying it.
 */
export class SecondaryRole {
  peer: MirrorStatus['peer'] = 'disconnected';
  /** every accepted replication socket, so that leaving the role never waits on a dead peer */
  private readonly inboundSockets = new Set<Socket>();
  private servers: Server[] = [];
  private inbound: Channel | null = null;
  private applyQueue: Frame[] = [];
  private applying = false;
  private lastInbound = 0;

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
        const server = createServer((socket) => {
          this.inboundSockets.add(socket);
          socket.once('close', () => this.inboundSockets.delete(socket));
          this.onInbound(new Channel(socket));
        });
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
    void acceptPrimary(ch, { key: this.ctx.opts.secret.key, module: this.ctx.opts.module.name, node: this.ctx.opts.self.name, report }).then((r) => {
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
      this.lastInbound = Date.now();
      this.peer = 'connected';
      this.ctx.log.info({ peer: r.peer, from: ch.socket.remoteAddress }, 'primary connected');
      ch.onClose = (reason) => {
        if (this.inbound !== ch) return;
        this.inbound = null;
        this.applyQueue = [];
        this.peer = 'disconnected';
        this.ctx.log.warn({ reason }, 'replication stream from the primary lost');
        void this.ctx.persist(true).catch(() => undefined);
        this.ctx.emit({ type: 'lost', reason });
      };
      ch.start((f) => this.onSecondaryFrame(ch, f));
    });
  }

  private onSecondaryFrame(ch: Channel, f: Frame): void {
    if (this.inbound !== ch) return;
    this.lastInbound = Date.now();
    if (f.h.t === 'manifest-req') {
      void this.sendManifest(ch);
      return;
    }
    this.applyQueue.push(f);
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
        ch.sendFrame({ t: 'manifest', e: batch });
        batch = [];
        bytes = 0;
      }
      this.lastInbound = Date.now();
    });
    ch.sendFrame({ t: 'manifest', e: batch, end: true });
  }

  /** applies queued frames in order; acknowledges when the queue is empty (or every 64 frames) */
  private async pump(ch: Channel): Promise<void> {
    this.applying = true;
    let lastSeq = -1;
    let errs: [number, string][] = [];
    let sinceAck = 0;
    try {
      while (this.inbound === ch && this.applyQueue.length > 0) {
        const f = this.applyQueue.shift()!;
        const seq = typeof f.h.q === 'number' ? f.h.q : -1;
        try {
          await this.applySecondary(f);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
          errs.push([seq, code]);
          this.ctx.log.debug({ op: f.h.t, seq, code }, 'could not apply');
        }
        lastSeq = seq;
        sinceAck++;
        if (this.applyQueue.length === 0 || sinceAck >= 64) {
          ch.sendFrame({ t: 'ack', q: lastSeq, ...(errs.length ? { e: errs } : {}) });
          errs = [];
          sinceAck = 0;
        }
        this.lastInbound = Date.now();
      }
    } finally {
      this.applying = false;
    }
  }

  private async applySecondary(f: Frame): Promise<void> {
    const h = f.h;
    if (h.t === 'base') {
      if (typeof h.id !== 'string') throw new Error('base without id');
      this.ctx.tracking.clear(h.id);
      this.ctx.setInResync(true);
      this.peer = 'resyncing';
      await this.ctx.persist(true);
      return;
    }
    if (h.t === 'synced') {
      if (h.id !== this.ctx.tracking.baseline) throw new Error('synced for another base');
      this.ctx.setInResync(false);
      await this.ctx.persist(true);
      this.peer = 'synced';
      this.ctx.log.info({ baseline: h.id }, 'in sync with the primary');
      this.ctx.emit({ type: 'synced' });
      return;
    }
    await this.ctx.applier.apply(h, f.data);
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
