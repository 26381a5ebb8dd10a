import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The Debian package as an administrator meets it: built by `npm run package:deb`, checked by lintian,
 * installed with apt into a fresh Debian root (mmdebstrap against the machine's own Debian sources, so
 * iproute2, nftables, fuse3 and iputils-arping come from the archive), then used there.
 *
 * Node.js: the package depends on nodejs (>= 20.19). Debian 12's own nodejs is 18, so on Debian 12 it
 * comes from NodeSource's packages (package nodejs, /usr/bin/node). The fresh root gets the same kind
 * of package, made here from the npm registry's Node.js 24 binary (scripts/node-line.sh), because this
 * machine reaches no NodeSource.
 */
const ROOT = join(import.meta.dirname, '../..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const work = mkdtempSync(join(tmpdir(), 'vigil-deb-'));
const chroot = join(work, 'root');
let deb = '';
/** the machine's own release and Debian sources: the fresh root is what an administrator of this machine would get */
const SUITE = /^VERSION_CODENAME=(\w+)$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'bookworm';
const SOURCES = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'].find((f) => existsSync(f) && readFileSync(f, 'utf8').includes('debian')) ?? '';

function run(cmd: string, args: string[], timeoutMs = 120_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

/**
 * Runs a shell command inside the installed root, in private mount and network namespaces (its own
 * /proc, the host's /dev bound in, only loopback): nothing it does reaches the host, and every mount
 * ends with it.
 */
function inRoot(script: string, timeoutMs = 60_000): Promise<{ code: number; out: string }> {
  // the root bound on itself is a mount point (ip netns needs one); /sys and /run of its own for network namespaces
  const outer = `mount --bind '${chroot}' '${chroot}' && mount -t proc proc '${chroot}/proc' && mount --rbind /dev '${chroot}/dev' && mount -t sysfs sysfs '${chroot}/sys' && mount -t tmpfs tmpfs '${chroot}/run' && ip link set lo up && exec chroot '${chroot}' /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root /bin/sh -c "$0"`;
  return run('unshare', ['-m', '-n', '-p', '-f', '--propagation', 'private', 'sh', '-c', outer, script], timeoutMs);
}

/** A NodeSource-style nodejs package (/usr/bin/node) holding the npm registry's Node.js 24 binary. */
function nodejsDeb(): string {
  const node = execFileSync('bash', [join(ROOT, 'scripts/node-line.sh'), '24'], { encoding: 'utf8' }).trim();
  const version = execFileSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
  const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  const dir = join(work, 'nodejs');
  mkdirSync(join(dir, 'usr/bin'), { recursive: true });
  mkdirSync(join(dir, 'DEBIAN'));
  copyFileSync(node, join(dir, 'usr/bin/node'));
  chmodSync(join(dir, 'usr/bin/node'), 0o755);
  writeFileSync(
    join(dir, 'DEBIAN/control'),
    `Package: nodejs\nVersion: ${version}-1vigiltest1\nArchitecture: ${arch}\nMaintainer: Vigil tests <tests@vigil-ha.example>\n` +
      'Depends: libc6 (>= 2.28), libstdc++6, libgcc-s1\nSection: web\nPriority: optional\n' +
      'Description: Node.js for the package test (NodeSource layout)\n the npm registry\'s node-linux binary as /usr/bin/node\n',
  );
  const out = join(work, 'nodejs.deb');
  execFileSync('dpkg-deb', ['--root-owner-group', '-Znone', '--build', dir, out], { stdio: 'ignore' });
  return out;
}

describe('Debian package', () => {
  beforeAll(async () => {
    const b = await run('npm', ['run', '--silent', 'package:deb']);
    expect(b.code, b.out).toBe(0);
    deb = join(ROOT, 'dist', readdirSync(join(ROOT, 'dist')).find((f) => f.startsWith(`vigil_${VERSION}_`) && f.endsWith('.deb'))!);
    console.log(`RESULT deb=${deb.split('/').pop()} deb_bytes=${statSync(deb).size}`);
    expect(SOURCES, 'no Debian apt sources on this machine (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list)').not.toBe('');
    const nodejs = nodejsDeb();
    // A fresh root from the archive this machine uses; apt installs both packages and resolves the rest.
    const m = await run(
      'mmdebstrap',
      [
        '--variant=apt', '--mode=root', '--quiet',
        `--customize-hook=copy-in ${nodejs} ${deb} /tmp`,
        `--customize-hook=chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd curl /tmp/nodejs.deb /tmp/${deb.split('/').pop()}`,
        SUITE, chroot, SOURCES,
      ],
      600_000,
    );
    expect(m.code, m.out.slice(-4000)).toBe(0);
  }, 900_000);

  afterAll(() => {
    // inRoot's mounts lived in namespaces that are gone; make sure before deleting the tree
    const mounted = readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.split(' ')[1]?.startsWith(chroot));
    if (mounted.length === 0) rmSync(work, { recursive: true, force: true });
    else console.error(`left ${work} in place: still mounted ${mounted.join('; ')}`);
  });

  it('lintian: no error or warning (the remaining overrides are justified in the package)', async () => {
    const r = await run('lintian', ['--fail-on', 'error,warning', deb]);
    const tags = r.out.split('\n').filter((l) => /^[EW]: /.test(l));
    console.log(`lintian ${deb.split('/').pop()}:\n${r.out.trim() || '(no output)'}`);
    expect(tags).toEqual([]);
    expect(r.code, r.out).toBe(0);
  });

  it('installs the command, the unit, the conffiles and the state directory, and depends on what it runs', async () => {
    const r = await inRoot(`dpkg-query -W -f='\${Status}|\${Depends}\\n' vigil; readlink -f /usr/bin/vigil; stat -c '%a %n' /var/lib/vigil; cat /var/lib/dpkg/info/vigil.conffiles`);
    expect(r.code, r.out).toBe(0);
    const [status, depends] = r.out.split('\n')[0].split('|');
    expect(status).toBe('install ok installed');
    for (const d of ['nodejs (>= 20.19)', 'iproute2', 'nftables', 'fuse3', 'iputils-arping', 'iputils-ping']) expect(depends).toContain(d);
    expect(r.out).toContain('/usr/lib/vigil/bin/vigil.mjs');
    expect(r.out).toContain('750 /var/lib/vigil');
    expect(r.out).toContain('/etc/vigil/cluster.yaml.example');
    expect(r.out).toContain('/etc/default/vigil');
    // production code only: no tests, sources, infra or cloud SDKs in the package
    const files = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' });
    expect(files).not.toMatch(/\.ts\n|\/test\/|\/infra\/|aws-sdk|aws-cdk|@azure|@google-cloud|esbuild|vitest/);
  });

  it('vigil --version, vigil init, vigil config check (default path) in the fresh root', async () => {
    const r = await inRoot('vigil --version && vigil init --cluster pkg --node a=127.0.0.1 --node b=127.0.0.2 --module m --mode mirror && stat -c "%a %n" /etc/vigil/cluster.key /etc/vigil/admin.token && vigil config check');
    expect(r.code, r.out).toBe(0);
    expect(r.out.split('\n')[0]).toBe(VERSION);
    expect(r.out).toContain('On every node: vigil config check && systemctl enable --now vigil');
    expect(r.out).toContain('600 /etc/vigil/cluster.key');
    expect(r.out).toContain('600 /etc/vigil/admin.token');
    expect(r.out).toContain('ok: /etc/vigil/cluster.yaml: cluster pkg, 2 nodes, 1 modules (m/mirror)');
  });

  it('systemd-analyze verify accepts the installed unit', async () => {
    // --man=no: the fresh root has no man-db to resolve Documentation=man:vigil(1); the page itself is checked
    const r = await inRoot('systemd-analyze verify --man=no vigil.service && ls /usr/share/man/man1/vigil.1.gz && grep -E "^(ExecStart|ConditionPathExists)=" /lib/systemd/system/vigil.service');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('ExecStart=/usr/bin/vigil daemon --config /etc/vigil/cluster.yaml $VIGIL_OPTS');
    expect(r.out).toContain('ConditionPathExists=/etc/vigil/cluster.yaml');
    expect(r.out).not.toMatch(/vigil\.service:/);
  });

  it('the packaged daemon runs: API, /metrics build info, vigil state', async () => {
    const script = [
      'vigil daemon --node a >/tmp/daemon.log 2>&1 & pid=$!',
      // until the API answers (or the daemon is gone): the CLI finds the API and the token in /etc/vigil
      'for i in $(seq 1 60); do vigil state --node a --json >/tmp/state.json 2>/tmp/state.err && break; kill -0 $pid 2>/dev/null || break; sleep 0.5; done',
      'cat /tmp/state.json /tmp/state.err',
      `node -e 'fetch("http://127.0.0.1:9010/metrics").then(r => r.text()).then(t => console.log(t.split("\\n").filter(l => l.startsWith("vigil_build_info")).join("\\n")))'`,
      'kill $pid; wait $pid; echo "daemon exit $?"',
      'echo "-- daemon log"; tail -20 /tmp/daemon.log',
    ].join('\n');
    const r = await inRoot(script, 100_000);
    expect(r.code, r.out).toBe(0);
    expect(r.out.split('\n')[0], r.out).toMatch(/^\{"module":"m","node":"a",/);
    expect(r.out).toMatch(new RegExp(`vigil_build_info\\{version="${VERSION.replaceAll('.', '\\.')}",node="v24\\.\\d+\\.\\d+"\\} 1`));
    expect(r.out).toContain('daemon exit 0');
  }, 120_000);

  it('vigil demo runs from the package: two nodes in namespaces, replication through the FUSE view, failover, swap', async () => {
    // curl is among the package's Recommends for the demo (the test root installs without recommends)
    const r = await inRoot('vigil demo --fast', 200_000);
    expect(r.out).toMatch(/Demo complete/);
    expect(r.out).toMatch(/missing on node\d: 0/);
    expect(r.out).toMatch(/never on both nodes at once/);
    expect(r.code, r.out.slice(-3000)).toBe(0);
  }, 240_000);

  it('purge removes the package, its state and the configuration vigil init wrote', async () => {
    const r = await inRoot(`DEBIAN_FRONTEND=noninteractive apt-get purge -y -q vigil >/dev/null && for f in /usr/bin/vigil /usr/lib/vigil /var/lib/vigil /etc/vigil/cluster.yaml /etc/vigil/cluster.key /etc/vigil/cluster.yaml.example /etc/default/vigil; do [ -e $f ] && echo "left $f"; done; dpkg-query -W -f='\${Status}\\n' nodejs`);
    expect(r.code, r.out).toBe(0);
    expect(r.out).not.toContain('left ');
    expect(r.out).toContain('install ok installed');
    expect(existsSync(join(chroot, 'usr/lib/vigil'))).toBe(false);
  });
});
