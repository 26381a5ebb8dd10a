import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppCluster, clientExec, missingCommits, sleep, startCommitClient } from '../helpers/app-cluster.ts';
import { templateChecker } from '../helpers/app-checker.ts';

// PostgreSQL from Debian, run by the postgresql template's scripts under real Vigil daemons, each
// node in its own network and mount namespace; a client commits through the VIP.
const PRIV = '/srv/vga-pg';
const PG_BIN = '/usr/lib/postgresql/15/bin';
const PASSWORD = randomBytes(12).toString('hex');
const CLIENT_ENV = { PGPASSWORD: PASSWORD, PGCONNECT_TIMEOUT: '2' };

describe('template postgresql: a mirrored PostgreSQL through real daemons and the VIP', () => {
  let app: AppCluster;
  let vip: string;
  const psql = (sql: string) => [`${PG_BIN}/psql`, '-X', '-q', '-h', vip, '-U', 'vigil', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-tAc', sql];
  const stored = async () => (await clientExec(app.c, psql('SELECT n FROM commits'), CLIENT_ENV)).split('\n').filter(Boolean).map(Number);

  beforeAll(async () => {
    app = await AppCluster.create({
      prefix: 'vgapg',
      subnet: '198.18.60',
      template: 'postgresql',
      privatePath: PRIV,
      dataDirs: [`${PRIV}/db`],
      set: {
        MODULE: 'pg',
        VIP: '198.18.60.100/24',
        DATA_DIR: `${PRIV}/db`,
        PG_SOCKET_DIR: `${PRIV}/run`,
        LOG_FILE: `${PRIV}/log/postgresql.log`,
        HBA_ALLOW: '198.18.60.0/24',
        DISTRO_SERVICE: '',
        STOP_FAST_SECONDS: '5',
      },
      module: { default_primary: 'node1' },
    });
    vip = app.vip;
    app.c.start('node1');
    app.c.start('node2');
    await app.c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 90_000);
    const sql = `CREATE ROLE vigil LOGIN PASSWORD '${PASSWORD}'; CREATE TABLE commits (n int PRIMARY KEY, at timestamptz DEFAULT now()); GRANT ALL ON commits TO vigil;`;
    await app.inside('node1', ['runuser', '-u', 'postgres', '--', `${PG_BIN}/psql`, '-X', '-q', '-h', `${PRIV}/run`, '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
  }, 120_000);
  afterAll(() => app?.destroy(), 60_000);

  it('kill -9 of the primary\'s namespace: the survivor takes over, every logged commit is there, the node returns SECOND, a swap keeps them all', async () => {
    const client = startCommitClient(app.c, psql('INSERT INTO commits (n) VALUES ({N})'), { env: CLIENT_ENV });
    try {
      while (client.committed().length < 30) await sleep(100);
      const killed = await app.killNamespace('node1');
      const killAt = Date.now();
      const first = await client.firstOkAfter(killAt, 60_000);
      expect(first, 'no commit through the VIP after the kill').toBeDefined();
      const failoverMs = first!.e - killAt;
      await app.c.waitFor({ node2: 'ALONE' }, 10_000);
      while (client.committed().filter((n) => n > first!.n).length < 20) await sleep(100);
      let logged = client.committed();
      let missing = missingCommits(logged, await stored());
      console.log(`postgresql: killed ${killed} processes of node1; first commit through the VIP ${failoverMs} ms after the kill; ${logged.length} commits logged, ${logged.length - missing.length} found`);
      expect(missing).toEqual([]);

      // THEN the killed node comes back as secondary (resync of what changed), and a swap moves PostgreSQL back
      await app.revive('node1');
      await app.c.waitFor({ node1: 'SECOND', node2: 'PRIM' }, 90_000);
      const swapAt = Date.now();
      const sw = await app.c.command('node2', 'swap');
      expect(sw?.status, sw?.body).toBe(200);
      await app.c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 60_000);
      const afterSwap = await client.firstOkAfter(Date.now(), 30_000);
      expect(afterSwap).toBeDefined();
      while (client.committed().filter((n) => n > afterSwap!.n).length < 10) await sleep(100);
      await client.stop();
      logged = client.committed();
      missing = missingCommits(logged, await stored());
      console.log(`postgresql: swap back to node1, first commit ${afterSwap!.e - swapAt} ms after the swap command; ${logged.length} commits logged, ${logged.length - missing.length} found`);
      expect(missing).toEqual([]);
    } finally {
      await client.stop();
    }
  }, 240_000);

  it('the checker detects a wedged server (SIGSTOP) and passes again once it runs (SIGCONT)', async () => {
    const probe = templateChecker(app, 'node1', app.mod);
    expect((await probe.once()).ok).toBe(true);
    const pid = Number((await app.inside('node1', ['head', '-n', '1', `${PRIV}/db/data/postmaster.pid`])).trim());
    process.kill(pid, 'SIGSTOP');
    try {
      const wedged = await probe.once();
      expect(wedged.ok).toBe(false);
      expect(wedged.reason).toMatch(new RegExp(`no answer within ${probe.timeoutMs} ms`));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect((await probe.once()).ok).toBe(true);
  }, 60_000);
});
