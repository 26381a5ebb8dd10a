import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { promisify } from 'node:util';
import { FUSE_DEV_IOC_BACKING_CLOSE, FUSE_DEV_IOC_BACKING_OPEN, FUSE_KERNEL_MINOR, FUSE_KERNEL_VERSION, IN_HEADER, Init, Init2, initOut, Op, OUT_HEADER, PASSTHROUGH_MINOR, readHeader, type InHeader } from './abi.ts';
import { ioctl, readInto, ReadableWaiter, sysError } from './libc.ts';

const run = promisify(execFile);
const E = osConstants.errno;

/** Answers one request: 0 and the payload parts, or a negative errno. Later calls are ignored. */
export type Reply = (err: number, ...parts: Buffer[]) => void;

/**
 * Handles one request. `body` is the request after its header; it is only valid until the handler
 * returns (the buffer is read into again), so a handler that goes asynchronous copies what it needs.
 */
export type Handler = (h: InHeader, body: Buffer, reply: Reply) => void;

export interface MountOptions {
  /** largest write the kernel may send in one request (rounded to pages, at most 1 MiB) */
  maxWrite: number;
  /** how long the event loop keeps looking for the next request after answering one, in µs */
  spinUs: number;
  fsname: string;
}

const NO_REPLY = new Set<number>([Op.FORGET, Op.BATCH_FORGET, Op.INTERRUPT]);
const WANTED = Init.ASYNC_READ | Init.BIG_WRITES | Init.MAX_PAGES | Init.CACHE_SYMLINKS | Init.AUTO_INVAL_DATA | Init.HANDLE_KILLPRIV_V2;
/** while waiting, look again at least this often (a stalled waiter must not hang a session) */
const POLL_MS = 1000;

/**
 * One FUSE mount served from this process: /dev/fuse is opened here and handed to mount(8) as fd 3
 * (the kernel's own "fd=" option), so neither libfuse nor a setuid helper is involved.
 *
 * Requests are read on the event loop from a non-blocking descriptor. After answering, the loop keeps
 * reading for a few tens of microseconds: an application doing write-fsync-write sends its next
 * request within that window, and catching it there saves two thread wake-ups per request (the
 * difference between ~60 µs and ~20 µs a round trip on a VM). When nothing comes, a worker thread
 * waits in poll(2) and wakes the loop. Replies are written synchronously (a copy into the
 * waiting request, no disk I/O).
 */
export class FuseDevice {
  private fd = -1;
  private closed = false;
  private initDone: (() => void) | null = null;
  private initFailed: ((e: Error) => void) | null = null;
  private readonly buf: Buffer;
  private pumping = false;
  private polling = false;
  /** requests read and not yet answered: while any is open the loop has other work, so it does not spin */
  private open = 0;
  private ended: (() => void)[] = [];
  private waiter: ReadableWaiter | null = null;
  /** the kernel agreed to passthrough opens (Linux 6.9+, CONFIG_FUSE_PASSTHROUGH, root) */
  passthrough = false;

  private constructor(
    readonly mountpoint: string,
    private readonly handler: Handler,
    private readonly opts: MountOptions,
  ) {
    this.buf = Buffer.allocUnsafe(opts.maxWrite + 64 * 1024);
  }

  static async mount(mountpoint: string, handler: Handler, opts: Partial<MountOptions> = {}): Promise<FuseDevice> {
    const maxWrite = Math.min(1 << 20, Math.max(4096, (opts.maxWrite ?? 1 << 20) & ~4095));
    const dev = new FuseDevice(mountpoint, handler, { maxWrite, spinUs: opts.spinUs ?? 50, fsname: opts.fsname ?? 'vigil' });
    await dev.start();
    return dev;
  }

  private async start(): Promise<void> {
    this.fd = fs.openSync('/dev/fuse', fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    this.waiter = new ReadableWaiter(this.fd);
    const mountOpts = ['fd=3', 'rootmode=40000', 'user_id=0', 'group_id=0', 'default_permissions', 'allow_other', `max_read=${this.opts.maxWrite}`].join(',');
    try {
      await new Promise<void>((resolve, reject) => {
        const p = spawn('mount', ['-i', '-t', `fuse.${this.opts.fsname}`, '-o', mountOpts, this.opts.fsname, this.mountpoint], { stdio: ['ignore', 'ignore', 'pipe', this.fd] });
        let stderr = '';
        p.stderr!.on('data', (d) => (stderr += d));
        p.on('error', reject);
        p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`cannot mount the FUSE view on ${this.mountpoint}: ${stderr.trim() || `mount exited ${code}`}`))));
      });
    } catch (e) {
      this.release();
      throw e;
    }
    const inited = new Promise<void>((resolve, reject) => {
      this.initDone = resolve;
      this.initFailed = reject;
    });
    this.pump();
    const timer = setTimeout(() => this.initFailed?.(new Error(`the kernel did not start the FUSE session on ${this.mountpoint}`)), 10_000);
    try {
      await inited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** reads and handles every request there is, spins a little, then waits for the next one */
  private pump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    const spinMs = this.opts.spinUs / 1000;
    let idleSince = performance.now();
    try {
      for (;;) {
        const n = readInto(this.fd, this.buf);
        if (n === -E.EAGAIN) {
          if (this.open === 0 && performance.now() - idleSince < spinMs) continue;
          break;
        }
        // ENOENT: the request was interrupted before we read it; EINTR: try again
        if (n === -E.ENOENT || n === -E.EINTR) continue;
        if (n < 0) {
          // ENODEV: the connection ended (unmounted, or the last user of a lazy unmount left)
          this.end(sysError(n, 'read /dev/fuse'));
          return;
        }
        if (n >= IN_HEADER) this.dispatch(n);
        idleSince = performance.now();
      }
    } finally {
      this.pumping = false;
    }
    this.wait();
  }

  private wait(): void {
    if (this.polling || this.closed) return;
    this.polling = true;
    this.waiter!.wait(POLL_MS, () => {
      this.polling = false;
      if (this.closed) this.release();
      else this.pump();
    });
  }

  private end(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.initFailed?.(err);
    // the waiter may still be inside poll(2) on this descriptor: then it releases it when that returns
    if (!this.polling) this.release();
    for (const w of this.ended.splice(0)) w();
  }

  private release(): void {
    this.waiter?.close();
    if (this.fd >= 0) fs.close(this.fd, () => undefined);
    this.fd = -1;
  }

  private dispatch(n: number): void {
    const h = readHeader(this.buf);
    const body = this.buf.subarray(IN_HEADER, Math.min(n, h.len));
    if (h.opcode === Op.INIT) return this.init(h, body);
    const reply = NO_REPLY.has(h.opcode) ? () => undefined : this.replier(h.unique);
    try {
      this.handler(h, body, reply);
    } catch {
      // a handler bug must not leave the caller hanging in the kernel
      reply(-osConstants.errno.EIO);
    }
  }

  private init(h: InHeader, body: Buffer): void {
    const major = body.readUInt32LE(0);
    const minor = body.readUInt32LE(4);
    const reply = this.replier(h.unique);
    if (major !== FUSE_KERNEL_VERSION || minor < 28) {
      reply(-osConstants.errno.EPROTO);
      this.initFailed?.(new Error(`kernel FUSE protocol ${major}.${minor} is too old (Vigil needs 7.28 or later)`));
      return;
    }
    const maxReadahead = body.readUInt32LE(8);
    const flags = body.readUInt32LE(12);
    // flags2 exists from 7.36 on, when the kernel sets INIT_EXT
    const flags2 = minor >= 36 && flags & Init.INIT_EXT && body.length >= 20 ? body.readUInt32LE(16) : 0;
    this.passthrough = minor >= PASSTHROUGH_MINOR && (flags2 & Init2.PASSTHROUGH) !== 0;
    const ext = this.passthrough ? Init.INIT_EXT : 0;
    reply(
      0,
      initOut({
        // without passthrough the session stays at 7.33, the protocol the rest was built and tested on
        minor: Math.min(minor, this.passthrough ? FUSE_KERNEL_MINOR : 33),
        maxReadahead,
        // with passthrough the secondary's reads bypass the page cache, and the primary's cache is never
        // stale (every change goes through the view): no invalidation on every changed mtime
        flags: (flags & WANTED & (this.passthrough ? ~Init.AUTO_INVAL_DATA : ~0)) | ext,
        flags2: this.passthrough ? Init2.PASSTHROUGH : 0,
        // the backing files live on an ordinary filesystem (stack depth 0) or an overlay (1)
        maxStackDepth: this.passthrough ? 2 : 0,
        maxWrite: this.opts.maxWrite,
        maxPages: this.opts.maxWrite / 4096,
      }),
    );
    this.initDone?.();
    this.initDone = null;
    this.initFailed = null;
  }

  /** requests read and not answered yet (the one being handled included) */
  get pending(): number {
    return this.open;
  }

  /**
   * Registers an open descriptor as a backing file for passthrough opens: the id to put in the open
   * reply, or a negative errno (then the open is served by the daemon as usual).
   */
  openBacking(fd: number): number {
    if (!this.passthrough || this.fd < 0) return -osConstants.errno.EOPNOTSUPP;
    const map = Buffer.alloc(16);
    map.writeInt32LE(fd, 0);
    return ioctl(this.fd, FUSE_DEV_IOC_BACKING_OPEN, map);
  }

  /** releases a backing id once no open refers to it any more (the kernel keeps its own reference) */
  closeBacking(id: number): void {
    if (this.fd < 0) return;
    const arg = Buffer.alloc(4);
    arg.writeUInt32LE(id, 0);
    ioctl(this.fd, FUSE_DEV_IOC_BACKING_CLOSE, arg);
  }

  private replier(unique: bigint): Reply {
    let done = false;
    this.open++;
    return (err, ...parts) => {
      if (done) return;
      done = true;
      this.open--;
      if (this.closed) return;
      const head = Buffer.allocUnsafe(OUT_HEADER);
      let len = OUT_HEADER;
      if (err === 0) for (const p of parts) len += p.length;
      head.writeUInt32LE(len, 0);
      head.writeInt32LE(err, 4);
      head.writeBigUInt64LE(unique, 8);
      try {
        if (err === 0 && parts.length) fs.writevSync(this.fd, [head, ...parts]);
        else fs.writeSync(this.fd, head);
      } catch {
        // ENOENT: the caller was interrupted and is gone; nothing to answer
      }
      // an answer sent from a callback (replication acknowledged): the next request follows shortly
      if (this.open === 0) this.pump();
    };
  }

  /**
   * Unmounts. When something still holds files open in the view the unmount is lazy: the mount leaves
   * the namespace at once, and this session goes on answering those holders (under the sink's current
   * rules) until the last one lets go.
   */
  async unmount(): Promise<void> {
    if (this.fd < 0 || this.closed) return;
    const gone = new Promise<void>((r) => this.ended.push(r));
    const lazy = await run('umount', [this.mountpoint]).then(
      () => false,
      () => run('umount', ['-l', this.mountpoint]).then(() => true, () => true),
    );
    if (!lazy) await gone;
  }
}

/** the mounts at mnt, bottom to top: [fstype, options] */
function mountsAt(mnt: string): [string, string][] {
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[1] === mnt)
    .map((f) => [f[2], f[3]]);
}

/** a read-only mount that is not FUSE: the shield under a view (below) */
const isShield = ([type, options]: [string, string]): boolean => !type.startsWith('fuse') && options.split(',').includes('ro');

/** FUSE mounts left by a process that died ("Transport endpoint is not connected") are detached first; the shield below stays. */
export async function unmountStale(mnt: string): Promise<void> {
  for (let i = 0; i < 8; i++) {
    const top = mountsAt(mnt).at(-1);
    if (!top || !top[0].startsWith('fuse')) return;
    await run('umount', ['-l', mnt]).catch(() => undefined);
  }
}

/**
 * Between two mounts of a view (a role change remounts it), the directory must neither take writes
 * nor look empty: an application still running wrote into the bare directory, beneath the next mount,
 * and was told it was durable, and read a records file there that held only those (found by the
 * soak: an append acknowledged that no node held; a read that missed 218 records). Under the view the
 * directory is a read-only bind of the data (`source`, the backing directory): between two mounts
 * reads see the data as it is, writes fail with EROFS.
 */
export async function shield(mnt: string, source: string): Promise<void> {
  if (mountsAt(mnt).some(isShield)) return;
  await run('mount', ['--bind', source, mnt]);
  await run('mount', ['-o', 'remount,bind,ro', mnt]);
}

/** the module stops for good: the directory is given back (no view, no shield) */
export async function unshield(mnt: string): Promise<void> {
  await unmountStale(mnt);
  const top = mountsAt(mnt).at(-1);
  if (top && isShield(top)) await run('umount', [mnt]).catch(() => run('umount', ['-l', mnt]).catch(() => undefined));
}
