import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as C, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { backing, closePair, createPair, type MirrorNode, type Pair } from '../helpers/mirror-cluster.ts';

/**
 * What an application holding a mirror module's view sees across a role change (the contract in
 * node-service/src/mirror/README.md, "Role changes"): one test per guard, each with a real process
 * holding descriptors across the change, against real FUSE mounts.
 */
const ROOT = `/tmp/vgrc-e2e-role-change-${process.pid}`;

/**
 * The application: a node process in a node's namespaces (it sees that node's view), holding descriptors
 * between commands. One JSON command a line on stdin, one answer a line: {ok, r} or {ok: false, code}.
 */
const APP_JS = `
const fs = require('node:fs');
const fds = new Map();
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  let out;
  try {
    let r = null;
    if (c.op === 'open') fds.set(c.as, fs.openSync(c.path, c.flags, 0o644));
    else if (c.op === 'write') r = fs.writeSync(fds.get(c.fd), c.data);
    else if (c.op === 'fsync') fs.fsyncSync(fds.get(c.fd));
    else if (c.op === 'close') { const fd = fds.get(c.fd); fds.delete(c.fd); fs.closeSync(fd); }
    else if (c.op === 'pread') { const b = Buffer.alloc(4096); r = b.subarray(0, fs.readSync(fds.get(c.fd), b, 0, b.length, 0)).toString(); }
    else if (c.op === 'read') r = fs.readFileSync(c.path, 'utf8');
    else if (c.op === 'list') r = fs.readdirSync(c.path).sort();
    else throw new Error('unknown op ' + c.op);
    out = { ok: true, r };
  } catch (e) {
    out = { ok: false, code: e.code ?? String(e) };
  }
  process.stdout.write(JSON.stringify(out) + '\\n');
});`;

type Cmd =
  | { op: 'open'; as: string; path: string; flags: number }
  | { op: 'write'; fd: string; data: string }
  | { op: 'fsync' | 'close' | 'pread'; fd: string }
  | { op: 'read' | 'list'; path: string };
interface Answer {
  ok: boolean;
  r?: unknown;
  code?: string;
}

class App {
  private readonly proc: ChildProcess;
  private readonly waiting: ((a: Answer) => void)[] = [];
  private stderr = '';

  constructor(node: MirrorNode) {
    this.proc = spawn('nsenter', ['-t', String(node.proc!.pid), '-m', '-n', '--wd=/', '--', process.execPath, '-e', APP_JS], { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => this.waiting.shift()?.(JSON.parse(l) as Answer));
    this.proc.stderr!.on('data', (d) => (this.stderr += d));
  }

  do(c: Cmd, timeoutMs = 20_000): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`application: ${JSON.stringify(c)} got no answer in ${timeoutMs} ms\n${this.stderr}`)), timeoutMs);
      this.waiting.push((a) => (clearTimeout(t), resolve(a)));
      this.proc.stdin!.write(`${JSON.stringify(c)}\n`);
    });
  }

  /** the command must succeed: its result */
  async ok(c: Cmd): Promise<unknown> {
    const a = await this.do(c);
    if (!a.ok) throw new Error(`application: ${JSON.stringify(c)} failed with ${a.code}`);
    return a.r;
  }

  /** the errno name the command failed with, or 'ok' */
  async errno(c: Cmd): Promise<string> {
    const a = await this.do(c);
    return a.ok ? 'ok' : a.code!;
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }
}

const APPEND = C.O_WRONLY | C.O_CREAT | C.O_APPEND;
const view = (n: MirrorNode, rel = '') => join(ROOT, n.name, 'data', rel);
const stored = (n: MirrorNode, rel: string) => readFileSync(join(backing(ROOT, n.name), rel), 'utf8');

describe('mirror: what an application holding the view sees across a role change', () => {
  let pair: Pair | undefined;
  /** the primary and the secondary (a swap exchanges them) */
  let P: MirrorNode;
  let S: MirrorNode;
  const apps: App[] = [];
  const app = (n: MirrorNode) => {
    const a = new App(n);
    apps.push(a);
    return a;
  };

  beforeAll(async () => {
    pair = await createPair({ root: ROOT, sendTimeoutMs: 1000, prefix: 'vgrc' });
    [P, S] = [pair.a, pair.b];
    P.start();
    S.start();
    await Promise.all([P.call('prepare'), S.call('prepare')]);
    await S.call('secondary');
    const synced = P.waitEvent('synced', 30_000);
    await P.call('primary');
    await synced;
  }, 60_000);

  afterAll(async () => {
    for (const a of apps) a.kill();
    await closePair(pair);
  }, 60_000);

  /** the daemon's WAIT and back (mirror-replication.ts idle(), then primary): the view is unmounted and mounted again */
  async function remountPrimary(between: () => Promise<void> = async () => undefined): Promise<void> {
    await P.call('stop', { remount: true });
    await between();
    await P.call('prepare');
    const synced = P.waitEvent('synced', 30_000);
    await P.call('primary');
    await synced;
  }

  it('stale connection: a descriptor opened before a remount gets EIO, even once the node is primary again; nothing it writes lands', async () => {
    const old = app(P);
    await old.ok({ op: 'open', as: 'log', path: view(P, 'stale.log'), flags: C.O_RDWR | C.O_CREAT | C.O_APPEND });
    await old.ok({ op: 'write', fd: 'log', data: 'rec-1\n' });
    await old.ok({ op: 'fsync', fd: 'log' });
    // the descriptor keeps the old mount busy: it is detached lazily, its connection lives on
    await remountPrimary();
    // records appended through the new mount: the old connection's idea of the file's size is now stale
    const fresh = app(P);
    await fresh.ok({ op: 'open', as: 'log', path: view(P, 'stale.log'), flags: APPEND });
    await fresh.ok({ op: 'write', fd: 'log', data: 'rec-2\nrec-3\n' });
    await fresh.ok({ op: 'fsync', fd: 'log' });
    await fresh.ok({ op: 'close', fd: 'log' });

    // the soak's case: an append at the old connection's idea of the end of the file
    const write = await old.errno({ op: 'write', fd: 'log', data: 'STALE\n' });
    const fsync = await old.errno({ op: 'fsync', fd: 'log' });
    // the read reaches the daemon: the old mount's one write covered part of a page, which its kernel does not keep
    const read = await old.errno({ op: 'pread', fd: 'log' });
    const close = await old.errno({ op: 'close', fd: 'log' });
    const onP = stored(P, 'stale.log');
    const onS = stored(S, 'stale.log');
    console.log(`role-change, stale connection: write ${write}, fsync ${fsync}, read ${read}, close ${close}; the file on the primary ${JSON.stringify(onP)}, on the secondary ${JSON.stringify(onS)}`);
    expect(write).toBe('EIO');
    expect(fsync).toBe('EIO');
    expect(read).toBe('EIO');
    // the close reports the refused flush; the descriptor is released all the same
    expect(close).toBe('EIO');
    const want = 'rec-1\nrec-2\nrec-3\n';
    expect(onP).toBe(want);
    expect(onS).toBe(want);
    expect(await fresh.ok({ op: 'read', path: view(P, 'stale.log') })).toBe(want);
  }, 60_000);

  it('primaryEra: a sync of a handle opened while primary fails with EIO once the node is secondary; a handle opened as secondary syncs', async () => {
    const a = app(P);
    await a.ok({ op: 'open', as: 'j', path: view(P, 'journal'), flags: APPEND });
    await a.ok({ op: 'open', as: 'dir', path: view(P), flags: C.O_RDONLY | C.O_DIRECTORY });
    await a.ok({ op: 'write', fd: 'j', data: 'synced-1\n' });
    await a.ok({ op: 'fsync', fd: 'j' });
    await a.ok({ op: 'fsync', fd: 'dir' });
    // written, not yet synced, when the role changes
    await a.ok({ op: 'write', fd: 'j', data: 'unsynced-2\n' });

    // a swap without a remount: the descriptors stay on the same connection
    await P.call('secondary');
    const synced = S.waitEvent('synced', 30_000);
    await S.call('primary');
    await synced;
    [P, S] = [S, P];

    const fsync = await a.errno({ op: 'fsync', fd: 'j' });
    const fsyncDir = await a.errno({ op: 'fsync', fd: 'dir' });
    const write = await a.errno({ op: 'write', fd: 'j', data: 'after\n' });
    // the same file opened now, on the secondary: its own handle syncs (locally)
    await a.ok({ op: 'open', as: 'now', path: view(S, 'journal'), flags: C.O_RDONLY });
    const fsyncNow = await a.errno({ op: 'fsync', fd: 'now' });
    console.log(`role-change, primaryEra: fsync ${fsync}, fsyncdir ${fsyncDir}, write ${write}; handle opened as secondary: fsync ${fsyncNow}`);
    expect(fsync).toBe('EIO');
    expect(fsyncDir).toBe('EIO');
    expect(write).toBe('EROFS');
    expect(fsyncNow).toBe('ok');
    for (const fd of ['j', 'dir', 'now']) await a.do({ op: 'close', fd });
    // what was synced before the change is on the node that serves now; the write after it nowhere
    expect(stored(P, 'journal').startsWith('synced-1\n')).toBe(true);
    expect(stored(S, 'journal')).not.toContain('after');
    expect(stored(P, 'journal')).not.toContain('after');
  }, 60_000);

  it('shield: between two mounts the directory reads the data and refuses writes with EROFS; nothing lands beneath the view', async () => {
    const a = app(P);
    await a.ok({ op: 'open', as: 'f', path: view(P, 'shielded.txt'), flags: APPEND });
    await a.ok({ op: 'write', fd: 'f', data: 'data\n' });
    await a.ok({ op: 'fsync', fd: 'f' });
    await a.ok({ op: 'close', fd: 'f' });

    let seen: { read: unknown; list: unknown; create: string; append: string; bare: string[] } | undefined;
    await remountPrimary(async () => {
      // the view is unmounted, the next mount not made yet: what the application still running meets
      const read = await a.do({ op: 'read', path: view(P, 'shielded.txt') });
      const list = await a.do({ op: 'list', path: view(P) });
      const create = await a.errno({ op: 'open', as: 'new', path: view(P, 'new.txt'), flags: C.O_WRONLY | C.O_CREAT | C.O_EXCL });
      const append = await a.errno({ op: 'open', as: 'old', path: view(P, 'shielded.txt'), flags: APPEND });
      // the bare mount point, as this process (outside the node's mount namespace) sees it
      seen = { read: read.ok ? read.r : read.code, list: list.ok ? list.r : list.code, create, append, bare: readdirSync(view(P)) };
    });
    console.log(`role-change, shield: between the mounts read ${JSON.stringify(seen?.read)}, list ${JSON.stringify(seen?.list)}, create ${seen?.create}, append ${seen?.append}, bare directory ${JSON.stringify(seen?.bare)}`);
    expect(seen).toEqual({ read: 'data\n', list: expect.arrayContaining(['shielded.txt']), create: 'EROFS', append: 'EROFS', bare: [] });
    expect(readdirSync(view(P))).toEqual([]);
    // through the new mount: the data as it was, nothing the blocked calls made
    expect(await a.ok({ op: 'read', path: view(P, 'shielded.txt') })).toBe('data\n');
    expect(await a.ok({ op: 'list', path: view(P) })).not.toContain('new.txt');
    for (const n of [P, S]) {
      expect(stored(n, 'shielded.txt')).toBe('data\n');
      expect(readdirSync(backing(ROOT, n.name))).not.toContain('new.txt');
    }
  }, 60_000);
});
