import { randomBytes } from 'node:crypto';
import { AppCluster, clientExec, missingCommits, sleep, startCommitClient } from './app-cluster.ts';

/** A mirrored database made from a template, running (node1 PRIM, node2 SECOND), with a table `commits (n)`. */
export interface MirrorDb {
  readonly app: AppCluster;
  readonly name: string;
  /** the client program committing row {N} through the VIP (one transaction, a new connection) */
  readonly insert: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** every n in the table, read through the VIP */
  stored(): Promise<number[]>;
  /** the server's main pid on a node (for SIGSTOP) */
  serverPid(node: string): Promise<number>;
}

const password = () => randomBytes(12).toString('hex');

async function startPair(app: AppCluster): Promise<void> {
  app.c.start('node1');
  app.c.start('node2');
  await app.c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 120_000);
}

/** replication keys merged into the template's (e.g. `{ ack: 'write' }`) */
type Replication = Readonly<Record<string, unknown>>;

export async function createPostgres(prefix: string, subnet: string, replication?: Replication): Promise<MirrorDb> {
  const priv = `/srv/${prefix}`;
  const bin = '/usr/lib/postgresql/15/bin';
  const app = await AppCluster.create({
    prefix,
    subnet,
    template: 'postgresql',
    privatePath: priv,
    dataDirs: [`${priv}/db`],
    set: { MODULE: 'pg', VIP: `${subnet}.100/24`, DATA_DIR: `${priv}/db`, PG_SOCKET_DIR: `${priv}/run`, LOG_FILE: `${priv}/log/postgresql.log`, HBA_ALLOW: `${subnet}.0/24`, DISTRO_SERVICE: '', STOP_FAST_SECONDS: '5' },
    module: { default_primary: 'node1', ...(replication ? { replication } : {}) },
  });
  try {
    await startPair(app);
    const pw = password();
    const sql = `CREATE ROLE vigil LOGIN PASSWORD '${pw}'; CREATE TABLE commits (n int PRIMARY KEY, at timestamptz DEFAULT now()); GRANT ALL ON commits TO vigil;`;
    await app.inside('node1', ['runuser', '-u', 'postgres', '--', `${bin}/psql`, '-X', '-q', '-h', `${priv}/run`, '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
    const psql = (q: string) => [`${bin}/psql`, '-X', '-q', '-h', app.vip, '-U', 'vigil', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-tAc', q];
    const env = { PGPASSWORD: pw, PGCONNECT_TIMEOUT: '2' };
    return {
      app,
      name: 'postgresql',
      insert: psql('INSERT INTO commits (n) VALUES ({N})'),
      env,
      stored: async () => (await clientExec(app.c, psql('SELECT n FROM commits'), env)).split('\n').filter(Boolean).map(Number),
      serverPid: async (node) => Number((await app.inside(node, ['head', '-n', '1', `${priv}/db/data/postmaster.pid`])).trim()),
    };
  } catch (e) {
    await app.destroy();
    throw e;
  }
}

export async function createMariadb(prefix: string, subnet: string, replication?: Replication): Promise<MirrorDb> {
  const priv = `/srv/${prefix}`;
  const app = await AppCluster.create({
    prefix,
    subnet,
    template: 'mariadb',
    privatePath: priv,
    dataDirs: [`${priv}/db`],
    privateFiles: () => ({ 'my.cnf': '[mysqld]\n' }),
    set: { VIP: `${subnet}.100/24`, DATA_DIR: `${priv}/db`, RUN_DIR: `${priv}/run`, LOG_FILE: `${priv}/log/error.log`, MY_CNF: `${priv}/my.cnf`, DISTRO_SERVICE: '', STOP_SECONDS: '10' },
    module: { default_primary: 'node1', ...(replication ? { replication } : {}) },
  });
  try {
    await startPair(app);
    const pw = password();
    const sql = `CREATE DATABASE app; CREATE USER 'vigil'@'%' IDENTIFIED BY '${pw}'; GRANT ALL ON app.* TO 'vigil'@'%'; CREATE TABLE app.commits (n INT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB;`;
    await app.inside('node1', ['mariadb', '--no-defaults', `--socket=${priv}/run/mysqld.sock`, '-e', sql]);
    const client = (q: string) => ['mariadb', '--no-defaults', '-h', app.vip, '-u', 'vigil', '--connect-timeout=2', '-N', '-B', 'app', '-e', q];
    const env = { MYSQL_PWD: pw };
    return {
      app,
      name: 'mariadb',
      insert: client('INSERT INTO commits (n) VALUES ({N})'),
      env,
      stored: async () => (await clientExec(app.c, client('SELECT n FROM commits'), env)).split('\n').filter(Boolean).map(Number),
      serverPid: async (node) => Number((await app.inside(node, ['cat', `${priv}/run/mariadb.pid`])).trim()),
    };
  } catch (e) {
    await app.destroy();
    throw e;
  }
}

export async function createFirebird(prefix: string, subnet: string): Promise<MirrorDb> {
  const priv = `/srv/${prefix}`;
  const app = await AppCluster.create({
    prefix,
    subnet,
    template: 'firebird',
    privatePath: priv,
    dataDirs: [`${priv}/db`],
    set: { VIP: `${subnet}.100/24`, DATA_DIR: `${priv}/db`, RUN_DIR: `${priv}/run`, DISTRO_SERVICE: '', STOP_SECONDS: '10' },
    module: { default_primary: 'node1' },
  });
  try {
    await startPair(app);
    const pw = password();
    const db = `${priv}/db/app.fdb`;
    // SYSDBA's password is the package's (the template copied its security database)
    const setup = [
      `. /etc/firebird/3.0/SYSDBA.password`,
      `printf "CREATE USER VIGIL PASSWORD '${pw}' USING PLUGIN Srp;\\nCOMMIT;\\n" | ISC_PASSWORD=$ISC_PASSWORD isql-fb -q -b -user SYSDBA localhost/3050:${priv}/db/vigil-check.fdb`,
      `printf "CREATE DATABASE 'localhost/3050:${db}' USER 'SYSDBA' PASSWORD '%s';\\nCREATE TABLE commits (n INTEGER NOT NULL PRIMARY KEY);\\nGRANT ALL ON commits TO USER VIGIL;\\nCOMMIT;\\n" "$ISC_PASSWORD" | isql-fb -q -b`,
    ].join(' && ');
    await app.inside('node1', ['sh', '-c', setup]);
    const env = { ISC_USER: 'VIGIL', ISC_PASSWORD: pw };
    const isql = (sql: string) => ['sh', '-c', `printf '%s\n' "${sql}" | exec isql-fb -q -b ${app.vip}/3050:${db}`];
    return {
      app,
      name: 'firebird',
      insert: isql('INSERT INTO commits (n) VALUES ({N}); COMMIT;'),
      env,
      stored: async () => (await clientExec(app.c, isql('SET HEADING OFF; SELECT n FROM commits;'), env)).split('\n').map((l) => l.trim()).filter((l) => /^\d+$/.test(l)).map(Number),
      serverPid: async (node) => Number((await app.inside(node, ['cat', `${priv}/run/firebird.pid`])).trim()),
    };
  } catch (e) {
    await app.destroy();
    throw e;
  }
}

/**
 * PostgreSQL in a podman container (image made locally by ensureTestImage), run by the podman
 * template. Each node keeps its own podman storage and run state under its private folder and reads
 * the image from a shared read-only image store (as if it had been loaded on each node). `ip netns
 * exec` gives the node a fresh /sys without cgroups, and crun refuses the host's hybrid v1/v2 layout:
 * the wrapper runs podman in a mount namespace of its own with a cgroup2 hierarchy on /sys/fs/cgroup
 * (containers run with --cgroups=disabled). RUN_OPTS keep resource limits at or below the current
 * ones (a sandbox without CAP_SYS_RESOURCE cannot raise them).
 */
export async function createPodman(prefix: string, subnet: string): Promise<MirrorDb> {
  const priv = `/srv/${prefix}`;
  const { ensureTestImage, IMAGE, IMAGE_STORE } = await import('./app-podman-image.ts');
  await ensureTestImage(console.log);
  const wrapper = `#!/bin/sh
export CONTAINERS_STORAGE_CONF=${priv}/storage.conf CONTAINERS_CONF=${priv}/containers.conf
exec unshare -m --propagation private sh -c 'mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null; exec podman "$@"' podman "$@"
`;
  const app = await AppCluster.create({
    prefix,
    subnet,
    template: 'podman',
    privatePath: priv,
    dataDirs: [`${priv}/db`],
    privateFiles: () => ({
      'podman.sh': wrapper,
      'storage.conf': `[storage]\ndriver = "overlay"\ngraphroot = "${priv}/containers/storage"\nrunroot = "${priv}/containers/run"\n[storage.options]\nadditionalimagestores = ["${IMAGE_STORE}"]\n`,
      'containers.conf': '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n',
    }),
    set: {
      MODULE: 'pgc',
      VIP: `${subnet}.100/24`,
      DATA_DIR: `${priv}/db`,
      RUN_DIR: `${priv}/run`,
      IMAGE,
      VOLUMES: 'pgdata:/data',
      PODMAN: `sh ${priv}/podman.sh`,
      RUN_OPTS: '--cgroups=disabled --ulimit nofile=1024:1024 --ulimit nproc=4096:4096',
      CHECK_COMMAND: '/usr/local/bin/vigil-check',
      STOP_SECONDS: '5',
    },
    module: { default_primary: 'node1' },
  });
  try {
    await startPair(app);
    const bin = '/usr/lib/postgresql/15/bin';
    const psql = (q: string) => [`${bin}/psql`, '-X', '-q', '-h', app.vip, '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-tAc', q];
    const env = { PGCONNECT_TIMEOUT: '2' };
    await clientExec(app.c, psql('CREATE TABLE commits (n int PRIMARY KEY)'), env);
    return {
      app,
      name: 'podman',
      insert: psql('INSERT INTO commits (n) VALUES ({N})'),
      env,
      stored: async () => (await clientExec(app.c, psql('SELECT n FROM commits'), env)).split('\n').filter(Boolean).map(Number),
      serverPid: async (node) => Number((await app.inside(node, ['sh', `${priv}/podman.sh`, 'inspect', '--format', '{{.State.Pid}}', 'pgc'])).trim()),
    };
  } catch (e) {
    await app.destroy();
    throw e;
  }
}

export interface MirrorRun {
  /** kill -9 of node1's namespace (with its link) to the end of the first successful commit after it */
  readonly failoverMs: number;
  readonly loggedAtFailover: number;
  readonly missingAtFailover: number[];
  /** the longest pause between two successful commits while the killed node returned and resynced (undefined without swap) */
  readonly resyncMs?: number;
  /** the longest pause between two successful commits around the swap (undefined without swap) */
  readonly swapMs?: number;
  readonly logged: number;
  readonly missing: number[];
}

/**
 * The mirror story: a client commits one row per transaction through the VIP and logs each commit it
 * saw succeed; node1 (primary) dies; node2 takes over; every logged commit must be in the table. With
 * `swapBack`: node1 returns as SECOND, a swap moves the database back, and every commit is still there.
 */
export async function runMirrorStory(db: MirrorDb, opts: { swapBack: boolean; log?: (m: string) => void }): Promise<MirrorRun> {
  const { app } = db;
  const log = opts.log ?? (() => {});
  const client = startCommitClient(app.c, db.insert, { env: { ...db.env } });
  try {
    const warm = Date.now() + 30_000;
    while (client.committed().length < 30) {
      if (Date.now() > warm) throw new Error(`${db.name}: the client committed only ${client.committed().length} rows in 30 s: ${JSON.stringify(client.results.slice(-3))}`);
      await sleep(100);
    }
    await app.killNamespace('node1');
    const killAt = Date.now();
    const first = await client.firstOkAfter(killAt, 90_000);
    if (!first) throw new Error(`${db.name}: no commit through the VIP within 90 s of the kill`);
    const failoverMs = first.e - killAt;
    await app.c.waitFor({ node2: 'ALONE' }, 10_000);
    while (client.committed().filter((n) => n > first.n).length < 10) await sleep(100);
    const loggedAtFailover = client.committed();
    const missingAtFailover = missingCommits(loggedAtFailover, await db.stored());
    log(`${db.name}: node1 killed; first commit through the VIP ${failoverMs} ms after the kill; ${loggedAtFailover.length} commits logged, ${loggedAtFailover.length - missingAtFailover.length} found`);
    if (!opts.swapBack) return { failoverMs, loggedAtFailover: loggedAtFailover.length, missingAtFailover, logged: loggedAtFailover.length, missing: missingAtFailover };

    const reviveAt = Date.now();
    await app.revive('node1');
    await app.c.waitFor({ node1: 'SECOND', node2: 'PRIM' }, 120_000);
    // a few commits with both nodes in sync, so that the swap's pause is measured on its own
    const synced = client.committed().length;
    while (client.committed().length < synced + 3) await sleep(50);
    const swapAt = Date.now();
    const sw = await app.c.command('node2', 'swap');
    if (sw?.status !== 200) throw new Error(`${db.name}: swap refused: ${sw?.body}`);
    await app.c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 90_000);
    const afterSwap = await client.firstOkAfter(Date.now(), 60_000);
    if (!afterSwap) throw new Error(`${db.name}: no commit through the VIP after the swap`);
    while (client.committed().filter((n) => n > afterSwap.n).length < 10) await sleep(100);
    await client.stop();
    const logged = client.committed();
    const missing = missingCommits(logged, await db.stored());
    const oks = client.results.filter((r) => r.ok);
    const lastBefore = (t: number) => Math.max(0, ...oks.filter((r) => r.e < t).map((r) => r.e));
    const resyncMs = longestPause(oks.filter((r) => r.e >= lastBefore(reviveAt) && r.e <= swapAt));
    const swapMs = longestPause(oks.filter((r) => r.e >= lastBefore(swapAt)));
    log(`${db.name}: node1 back (resync, SECOND): the client's longest pause between two commits ${resyncMs} ms; swapped back to PRIM: longest pause ${swapMs} ms; ${logged.length} commits logged, ${logged.length - missing.length} found`);
    return { failoverMs, loggedAtFailover: loggedAtFailover.length, missingAtFailover, resyncMs, swapMs, logged: logged.length, missing };
  } finally {
    await client.stop();
  }
}

function longestPause(oks: readonly { e: number }[]): number {
  const ends = oks.map((r) => r.e).sort((a, b) => a - b);
  let worst = 0;
  for (let i = 1; i < ends.length; i++) worst = Math.max(worst, ends[i] - ends[i - 1]);
  return worst;
}
