import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { run } from '../node-service/src/demo/lan.ts';

/**
 * A node's own small filesystem: an ext4 image loop-mounted on the folder the node's namespace binds on
 * its private path, so the secondary's disk can fill up, stall (fsfreeze) or fail (ext4's
 * trigger_fs_error → errors=remount-ro) without touching the machine's disk. `mount -o loop` sets the
 * loop device's autoclear, so unmounting frees it.
 */
export class NodeDisk {
  private mounted = false;
  private frozen = false;
  /** copies of the image made by repair() */
  private copies = 0;

  constructor(
    /** the ext4 image; repair() replaces it by a repaired copy while the failed one is held */
    public image: string,
    readonly mountpoint: string,
    readonly sizeMb: number,
  ) {}

  async create(): Promise<void> {
    rmSync(this.image, { force: true });
    await run(['truncate', '-s', `${this.sizeMb}M`, this.image]);
    await run(['mkfs.ext4', '-q', '-F', '-m', '0', '-E', 'lazy_itable_init=0,lazy_journal_init=0', this.image], 60_000);
    await this.mount();
    live.add(this);
  }

  async mount(): Promise<void> {
    mkdirSync(this.mountpoint, { recursive: true });
    await run(['mount', '-o', 'loop,errors=remount-ro', this.image, this.mountpoint]);
    this.mounted = true;
  }

  /** the loop device's name as ext4 names it in /sys/fs/ext4 (e.g. loop3) */
  async device(): Promise<string> {
    const src = (await run(['findmnt', '-n', '-o', 'SOURCE', this.mountpoint])).trim();
    return src.replace('/dev/', '');
  }

  /** fills the filesystem to the last block with a file outside the replicated tree */
  async fill(): Promise<void> {
    const free = Number((await run(['df', '--output=avail', '-B1', this.mountpoint])).split('\n')[1]);
    if (free > 0) await run(['fallocate', '-l', String(free), `${this.mountpoint}/filler`]).catch(() => undefined);
    // fallocate leaves what it cannot reserve in whole extents: top up byte by byte
    await run(['sh', '-c', `cat /dev/zero > '${this.mountpoint}/filler2' 2>/dev/null; true`], 60_000);
  }

  async free(): Promise<void> {
    rmSync(`${this.mountpoint}/filler`, { force: true });
    rmSync(`${this.mountpoint}/filler2`, { force: true });
  }

  /** every write and fsync blocks until thaw(): a disk that stops answering */
  async freeze(): Promise<void> {
    await run(['fsfreeze', '-f', this.mountpoint]);
    this.frozen = true;
  }

  async thaw(): Promise<void> {
    if (!this.frozen) return;
    await run(['fsfreeze', '-u', this.mountpoint]).catch(() => undefined);
    this.frozen = false;
  }

  /** the filesystem reports an error: ext4 turns it read-only (errors=remount-ro), as on a failing disk */
  async fail(): Promise<void> {
    const dev = await this.device();
    await run(['sh', '-c', `echo 1 > /sys/fs/ext4/${dev}/trigger_fs_error`]);
  }

  /**
   * after fail(): unmount (the node's processes must be gone), repair with e2fsck, mount again. The
   * failed filesystem lives on while any mount namespace still holds it (a killed node's goes a moment
   * later; another suite's or soak's private namespace may hold it until it ends), and e2fsck refuses
   * an image in use ("is mounted", exit 8): that refusal was ignored, so the node came back on the
   * unrepaired filesystem (EUCLEAN on a slot file, the pair never in sync: CI soak seed 17 #3 and the
   * 60-minute run's #240). A held image is copied, the copy repaired and mounted, and it is this disk's
   * image from then on; the held instance keeps the old inode (read-only: it never writes again).
   */
  async repair(): Promise<void> {
    await this.unmount();
    let held = true;
    for (let i = 0; i < 30 && held; i++) {
      held = (await run(['losetup', '-j', this.image])).trim() !== '';
      if (held) await new Promise((r) => setTimeout(r, 100));
    }
    if (held) {
      const copy = `${this.image.replace(/\.r\d+$/, '')}.r${++this.copies}`;
      await run(['cp', '--sparse=always', this.image, copy], 60_000);
      rmSync(this.image, { force: true });
      this.image = copy;
    }
    await fsck(this.image);
    await this.mount();
  }

  async unmount(): Promise<void> {
    if (!this.mounted) return;
    await this.thaw();
    for (let i = 0; ; i++) {
      try {
        await run(['umount', this.mountpoint]);
        break;
      } catch (e) {
        // a killed node's mount namespace goes away a moment after its last process; a copy that stays
        // busy (a process of another suite in a copy of these mounts) fails the unmount everywhere:
        // detach it here then, the busy copy keeps its own read-only instance (repair() mounts the
        // image through a new loop device beside it). Found by the CI soak: the node came back on the
        // read-only filesystem and the pair never recovered.
        if (i >= 30) {
          await run(['umount', '-l', this.mountpoint]);
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    this.mounted = false;
  }

  async destroy(): Promise<void> {
    await this.unmount().catch(() => this.destroySync());
    rmSync(this.image, { force: true });
    live.delete(this);
  }

  destroySync(): void {
    for (const cmd of [['fsfreeze', '-u', this.mountpoint], ['umount', '-l', this.mountpoint]]) {
      try {
        execFileSync(cmd[0], cmd.slice(1), { stdio: 'ignore' });
      } catch {
        /* not frozen / not mounted */
      }
    }
    this.mounted = false;
    rmSync(this.image, { force: true });
  }
}

/**
 * Every `ip netns exec` (the probe, the writer, each command run in a namespace) starts in a copy of
 * the machine's mounts, and a copy keeps a filesystem alive. Under a shared mount the copies are slaves
 * (ip netns exec makes them so): unmounting a node's disk here unmounts it in every copy, so a failed
 * disk can be checked and mounted again.
 */
export async function shareMounts(dir: string): Promise<void> {
  await run(['mount', '--bind', dir, dir]);
  await run(['mount', '--make-shared', dir]);
  shared.add(dir);
}

export async function unshareMounts(dir: string): Promise<void> {
  if (!shared.delete(dir)) return;
  await run(['umount', dir]).catch(() => run(['umount', '-l', dir]));
}

/** e2fsck -f -y: exit 0 (clean) or 1 (errors corrected); anything else (in use, uncorrected) is an error */
async function fsck(image: string): Promise<void> {
  try {
    await run(['e2fsck', '-f', '-y', image], 120_000);
  } catch (e) {
    const err = e as Error & { code?: number; stdout?: string; stderr?: string };
    if (err.code !== 1) throw new Error(`e2fsck ${image} exited ${err.code}: ${`${err.stdout ?? ''}${err.stderr ?? ''}`.trim().slice(-1500)}`);
  }
}

const live = new Set<NodeDisk>();
const shared = new Set<string>();
// lan.ts kills the namespaces' processes on exit and Ctrl-C (its handlers run first): then the disks go
process.on('exit', () => {
  for (const d of live) d.destroySync();
  for (const dir of shared) {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
    } catch {
      /* not mounted */
    }
  }
});
