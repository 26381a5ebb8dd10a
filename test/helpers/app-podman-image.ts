import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** Where the test image is kept between runs (a read-only additional image store of every node). */
export const IMAGE_STORE = '/var/tmp/vigil-test-podman/store';
export const IMAGE = 'localhost/vigil-test-pg:2';
const WORK = '/var/tmp/vigil-test-podman';

/** The image's entrypoint: initdb on an empty volume, then postgres as PID 1 (so SIGSTOP of it wedges the server). */
const ENTRY = `#!/bin/sh
set -e
PG=/usr/lib/postgresql/15/bin
chown postgres /data && chmod 700 /data
if [ ! -s /data/PG_VERSION ]; then
  setpriv --reuid=postgres --regid=postgres --init-groups $PG/initdb -D /data --auth-local=trust --auth-host=trust >/dev/null
  echo "host all all 0.0.0.0/0 trust" >> /data/pg_hba.conf
fi
rm -f /data/postmaster.pid
mkdir -p /run/postgresql && chown postgres /run/postgresql
exec setpriv --reuid=postgres --regid=postgres --init-groups $PG/postgres -D /data -c listen_addresses=* -c recovery_init_sync_method=syncfs -c jit=off
`;
const CHECK = `#!/bin/sh
out=$(psql -X -U postgres -h /run/postgresql -tAc 'SELECT NOT pg_is_in_recovery()') && [ "$out" = t ]
`;

const podman = (...args: string[]) => exec('podman', ['--root', IMAGE_STORE, '--runroot', join(WORK, 'run'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', ...args], { maxBuffer: 16 << 20, timeout: 600_000 });

/**
 * A PostgreSQL image made here (no registry is reachable): a Debian root from mmdebstrap, with an
 * entrypoint and a health check added, imported with `podman import`. Built once and kept in
 * IMAGE_STORE (minutes: mmdebstrap downloads and installs postgresql-15; libLLVM, which only the JIT
 * needs, is left out and the JIT turned off).
 */
export async function ensureTestImage(log: (m: string) => void = () => {}): Promise<void> {
  if (existsSync(IMAGE_STORE) && (await podman('image', 'exists', IMAGE).then(() => true, () => false))) return;
  mkdirSync(WORK, { recursive: true });
  const tar = join(WORK, 'rootfs.tar');
  const extra = join(WORK, 'extra');
  // a root file system left by a build interrupted after mmdebstrap is used as is
  if (!existsSync(tar)) {
    log(`building ${IMAGE}: mmdebstrap bookworm with postgresql-15 (a few minutes)`);
    await exec('mmdebstrap', ['--quiet', '--variant=minbase', '--include=postgresql-15', '--dpkgopt=path-exclude=/usr/share/{doc,man,locale}/*', '--dpkgopt=path-exclude=/usr/lib/x86_64-linux-gnu/libLLVM*', 'bookworm', tar], { timeout: 900_000, maxBuffer: 16 << 20 });
  }
  mkdirSync(join(extra, 'usr/local/bin'), { recursive: true });
  writeFileSync(join(extra, 'usr/local/bin/vigil-entry'), ENTRY, { mode: 0o755 });
  writeFileSync(join(extra, 'usr/local/bin/vigil-check'), CHECK, { mode: 0o755 });
  await exec('tar', ['--append', '-f', tar, '-C', extra, './usr/local/bin/vigil-entry', './usr/local/bin/vigil-check']);
  await podman('import', '--change', 'CMD ["/usr/local/bin/vigil-entry"]', tar, IMAGE);
  rmSync(tar, { force: true });
  rmSync(extra, { recursive: true, force: true });
}
