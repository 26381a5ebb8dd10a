import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { KeyRing } from '../secure/keyring.ts';
import { channelKey, plainConnect, replicationRing, secureConnect } from './secure-socket.ts';
import { authMac, encodeFrame, FrameDecoder, FrameError, MAX_BODY, MAX_BODY_UNAUTH, macEqual, nonce, PROTOCOL_VERSION, type Frame } from './protocol.ts';

/** What the secondary tells the primary right after authentication. */
export interface SecondaryReport {
  /** sync id its data corresponds to (null: never synced) */
  id: string | null;
  /** no local change since that sync id */
  clean: boolean;
  full: boolean;
  div: boolean;
  node: string;
}

/**
 * An authenticated connection: frames in, frames out. Authentication is an HMAC-SHA256 challenge/
 * response in both directions over fresh 256-bit nonces, bound to the module name; until it succeeds a
 * peer may only send frames of at most 4 KiB and nothing it sends is acted upon.
 */
export class Channel {
  private decoder = new FrameDecoder(MAX_BODY_UNAUTH);
  private waiters: ((f: Frame) => void)[] = [];
  private early: Frame[] = [];
  onFrame: (f: Frame) => void = (f) => this.early.push(f);
  onClose: (reason: string) => void = () => undefined;
  closed = false;

  constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = this.decoder.push(chunk);
      } catch (e) {
        this.close(`malformed frame: ${(e as Error).message}`);
        return;
      }
      for (const f of frames) {
        if (this.closed) return;
        const w = this.waiters.shift();
        if (w) w(f);
        else this.onFrame(f);
      }
    });
    socket.on('error', (e) => this.close(`socket error: ${e.message}`));
    socket.on('close', () => this.close('connection closed by the peer'));
  }

  private corked = false;

  /**
   * Sends buf (or its parts, in one write) now, together with what sendSoon() held back; written (parts
   * only) is called once the socket let go of them (written to the kernel, or the connection ended).
   */
  send(buf: Buffer | Buffer[], written?: () => void): boolean {
    if (this.closed) return false;
    if (!Array.isArray(buf)) {
      const ok = this.socket.write(buf);
      this.flush();
      return ok;
    }
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
    }
    let ok = true;
    for (const [i, b] of buf.entries()) ok = i === buf.length - 1 && written ? this.socket.write(b, () => written()) : this.socket.write(b);
    this.flush();
    return ok;
  }

  /**
   * Sends buf at the end of this tick at the latest, with whatever follows it in the same tick: a
   * change nobody waits for (ack: fsync) and the fsync the view handles right after it leave as one
   * TLS record and one TCP segment, not two; the resync's small operations go out together.
   */
  sendSoon(buf: Buffer): boolean {
    // a large frame (a streaming writer's 1 MiB writes) leaves at once: held, the stream would go out
    // in bursts of a window each instead of overlapping the local writes
    if (buf.length > SOON_MAX) return this.send(buf);
    if (this.closed) return false;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => this.flush());
    }
    const ok = this.socket.write(buf);
    if (this.socket.writableLength > SOON_MAX) this.flush();
    return ok;
  }

  private flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }

  sendFrame(h: object, data?: Buffer): boolean {
    return this.send(encodeFrame(h, data));
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    for (const w of this.waiters.splice(0)) w({ h: { t: '__closed', reason }, data: Buffer.alloc(0) });
    this.onClose(reason);
  }

  /** the next frame (during the handshake), or a '__closed' frame */
  next(timeoutMs: number): Promise<Frame> {
    const e = this.early.shift();
    if (e) return Promise.resolve(e);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.close('handshake timeout');
      }, timeoutMs);
      this.waiters.push((f) => {
        clearTimeout(t);
        resolve(f);
      });
    });
  }

  authenticated(): void {
    this.decoder.maxBody = MAX_BODY;
  }

  /** hands every frame (also those that arrived already) to handler */
  start(handler: (f: Frame) => void): void {
    this.onFrame = handler;
    for (const f of this.early.splice(0)) handler(f);
  }
}

const HANDSHAKE_MS = 5000;
/** what sendSoon holds back at most (a few 4 KiB writes with their fsync, a resync's small files) */
const SOON_MAX = 64 * 1024 + 1024;

/** Primary side: connect to one of the peer's addresses and authenticate. */
export async function connectToSecondary(opts: {
  addrs: readonly string[];
  port: number;
  /** the cluster secret (TLS is keyed from it) */
  key: Buffer;
  /** the daemon's live keys (rotation); default: from `key` */
  keys?: KeyRing;
  /** replication.encryption: none */
  plain?: boolean;
  module: string;
  node: string;
  localAddrs?: readonly string[];
}): Promise<{ ch: Channel; report: SecondaryReport }> {
  let lastErr: Error = new Error('no peer address');
  for (const host of opts.addrs) {
    let socket: Socket;
    try {
      socket = opts.plain ? await plainConnect({ host, port: opts.port, timeoutMs: 2000 }) : await secureConnect({ host, port: opts.port, ring: replicationRing(opts), module: opts.module, timeoutMs: 2000 });
    } catch (e) {
      lastErr = e as Error;
      continue;
    }
    const ch = new Channel(socket);
    const key = opts.plain ? replicationRing(opts).sending.secret.key : channelKey(socket as TLSSocket);
    try {
      const hello = await ch.next(HANDSHAKE_MS);
      if (hello.h.t !== 'hello' || hello.h.v !== PROTOCOL_VERSION || hello.h.mod !== opts.module || typeof hello.h.n !== 'string' || !/^[0-9a-f]{64}$/.test(hello.h.n)) {
        throw new FrameError(hello.h.t === '__closed' ? String(hello.h.reason) : `unexpected greeting from ${host}`);
      }
      const nP = nonce();
      ch.sendFrame({ t: 'auth', n: nP, mac: authMac(key, 'P', opts.module, hello.h.n, nP), node: opts.node });
      const ok = await ch.next(HANDSHAKE_MS);
      if (ok.h.t !== 'auth-ok' || !macEqual(ok.h.mac, authMac(key, 'S', opts.module, nP, hello.h.n))) {
        throw new FrameError(`peer ${host} refused the handshake or does not hold the cluster secret`);
      }
      ch.authenticated();
      return {
        ch,
        report: {
          id: typeof ok.h.id === 'string' ? ok.h.id : null,
          clean: ok.h.clean === true,
          full: ok.h.full === true,
          div: ok.h.div === true,
          node: typeof ok.h.node === 'string' ? ok.h.node : '?',
        },
      };
    } catch (e) {
      ch.close((e as Error).message);
      lastErr = e as Error;
    }
  }
  throw lastErr;
}

/** Secondary side: authenticate an incoming connection; resolves false (and closes it) when refused. */
export async function acceptPrimary(ch: Channel, opts: { key: Buffer; module: string; node: string; report: () => Omit<SecondaryReport, 'node'> }): Promise<{ ok: boolean; reason?: string; peer?: string }> {
  const nS = nonce();
  ch.sendFrame({ t: 'hello', v: PROTOCOL_VERSION, mod: opts.module, n: nS, node: opts.node });
  const auth = await ch.next(HANDSHAKE_MS);
  if (auth.h.t !== 'auth' || typeof auth.h.n !== 'string' || !/^[0-9a-f]{64}$/.test(auth.h.n) || !macEqual(auth.h.mac, authMac(opts.key, 'P', opts.module, nS, auth.h.n))) {
    const reason = auth.h.t === '__closed' ? String(auth.h.reason) : 'bad authentication (wrong cluster secret or not a Vigil peer)';
    ch.close(reason);
    return { ok: false, reason };
  }
  ch.sendFrame({ t: 'auth-ok', mac: authMac(opts.key, 'S', opts.module, auth.h.n, nS), node: opts.node, ...opts.report() });
  ch.authenticated();
  return { ok: true, peer: typeof auth.h.node === 'string' ? auth.h.node : '?' };
}
