/**
 * Real database servers on a mirror node's view (Debian's postgresql-15 and mariadb-server), for the
 * kill-the-primary tests: initialise, start, a client loop that logs each transaction once its commit
 * returned, and a query. Every command runs inside the node's network and mount namespaces.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import type { MirrorNode } from './mirror-cluster.ts';

/** runs cmd inside the node's namespaces; resolves with stdout, rejects with the output on failure */
export function inside(node: MirrorNode, cmd: string[], timeoutMs = 180_000): Promise<string> {
  return new Promise((res, rej) => {
    const p = node.spawnInside(cmd);
    let out = '';
    let err = '';
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (err += d));
    p.on('exit', (c) => {
      clearTimeout(t);
      if (c === 0) res(out);
      else rej(new Error(`${cmd.join(' ')} (on ${node.name}): exit ${c}\n${err}${out}`));
    });
  });
}

/** kill -9 of every process in the node's network namespace: its daemon, the database, the clients */
export function killNamespace(node: MirrorNode): number {
  const pids = execFileSync('ip', ['netns', 'pids', node.lan.ns(node.name)]).toString().split('\n').filter(Boolean);
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  node.proc = null;
  return pids.length;
}

/** a folder that user may write to, outside the views (sockets, server logs) */
export function ownedDir(path: string, user: string): string {
  mkdirSync(path, { recursive: true });
  execFileSync('chown', [`${user}:${user}`, path]);
  return path;
}

export interface Database {
  /** creates the server's files in dir (inside the view) and the table t(id) */
  init(node: MirrorNode, dir: string, run: string): Promise<void>;
  /** starts the server on dir (crash recovery when it was killed), its socket in run */
  start(node: MirrorNode, dir: string, run: string): Promise<void>;
  /** a shell loop inserting from..: after each committed INSERT it appends the id to ackLog */
  client(node: MirrorNode, run: string, from: number, ackLog: string): ChildProcess;
  ids(node: MirrorNode, run: string): Promise<number[]>;
  stop(node: MirrorNode, dir: string, run: string): Promise<void>;
}

const PG = '/usr/lib/postgresql/15/bin';
const AS_PG = ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--'];

export const postgresql: Database = {
  async init(node, dir, run) {
    await inside(node, ['sh', '-c', `mkdir -p ${dir} && chown postgres:postgres ${dir} && chmod 700 ${dir}`]);
    await inside(node, [...AS_PG, `${PG}/initdb`, '-D', dir, '-A', 'trust', '-U', 'postgres', '--no-instructions']);
    await this.start(node, dir, run);
    await inside(node, [`${PG}/psql`, '-h', run, '-U', 'postgres', '-qAt', '-v', 'ON_ERROR_STOP=1', '-c', 'CREATE TABLE t (id bigint PRIMARY KEY, pad text)', 'postgres']);
  },
  async start(node, dir, run) {
    const conf = `-c listen_addresses='' -k ${run} -c fsync=on -c synchronous_commit=on -c full_page_writes=on`;
    await inside(node, [...AS_PG, `${PG}/pg_ctl`, '-D', dir, '-o', conf, '-l', `${run}/postgresql.log`, '-w', '-t', '150', 'start']).catch((e: Error) => {
      throw new Error(`${e.message}\n--- ${run}/postgresql.log:\n${readFileSync(`${run}/postgresql.log`, 'utf8').slice(-3000)}`);
    });
  },
  client(node, run, from, ackLog) {
    const sql = `INSERT INTO t VALUES ($i, repeat('x', 200))`;
    return node.spawnInside(['sh', '-c', `i=${from}; while ${PG}/psql -h ${run} -U postgres -qAt -v ON_ERROR_STOP=1 -c "${sql}" postgres >/dev/null 2>&1; do echo $i >> ${ackLog}; i=$((i+1)); done`]);
  },
  async ids(node, run) {
    const out = await inside(node, [`${PG}/psql`, '-h', run, '-U', 'postgres', '-qAt', '-v', 'ON_ERROR_STOP=1', '-c', 'SELECT id FROM t', 'postgres']);
    return out.split('\n').filter(Boolean).map(Number);
  },
  async stop(node, dir) {
    await inside(node, [...AS_PG, `${PG}/pg_ctl`, '-D', dir, '-m', 'fast', '-w', 'stop']);
  },
};

/** InnoDB with a durable commit (flush at every commit), fsync as the flush method (the view has no O_DIRECT) */
const MARIADB_OPTS = (dir: string, run: string) => [
  '--no-defaults',
  `--datadir=${dir}`,
  `--socket=${run}/mysqld.sock`,
  `--pid-file=${run}/mysqld.pid`,
  `--log-error=${run}/mysqld.err`,
  '--skip-networking',
  '--user=mysql',
  '--innodb-flush-log-at-trx-commit=1',
  '--innodb-flush-method=fsync',
  '--innodb-use-native-aio=0',
  '--innodb-buffer-pool-size=64M',
  '--innodb-log-file-size=32M',
];

export const mariadb: Database = {
  async init(node, dir, run) {
    await inside(node, ['sh', '-c', `mkdir -p ${dir} && chown mysql:mysql ${dir} && chmod 750 ${dir}`]);
    await inside(node, ['mariadb-install-db', '--no-defaults', `--datadir=${dir}`, '--user=mysql', '--auth-root-authentication-method=normal', '--skip-test-db', '--innodb-flush-method=fsync', '--innodb-use-native-aio=0']);
    await this.start(node, dir, run);
    await inside(node, ['mariadb', '--no-defaults', `--socket=${run}/mysqld.sock`, '-uroot', '-e', 'CREATE DATABASE v; CREATE TABLE v.t (id bigint PRIMARY KEY, pad varchar(255)) ENGINE=InnoDB']);
  },
  async start(node, dir, run) {
    // mariadbd does not detach: started in the background, then waited for on its socket
    node.spawnInside(['sh', '-c', `exec mariadbd ${MARIADB_OPTS(dir, run).join(' ')} >/dev/null 2>&1`]);
    for (let i = 0; i < 300; i++) {
      const up = await inside(node, ['mariadb-admin', '--no-defaults', `--socket=${run}/mysqld.sock`, '-uroot', 'ping'], 10_000).then(
        () => true,
        () => false,
      );
      if (up) return;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`mariadbd did not start on ${node.name}; see ${run}/mysqld.err`);
  },
  client(node, run, from, ackLog) {
    const sql = `INSERT INTO v.t VALUES ($i, repeat('x', 200))`;
    return node.spawnInside(['sh', '-c', `i=${from}; while mariadb --no-defaults --socket=${run}/mysqld.sock -uroot -e "${sql}" >/dev/null 2>&1; do echo $i >> ${ackLog}; i=$((i+1)); done`]);
  },
  async ids(node, run) {
    const out = await inside(node, ['mariadb', '--no-defaults', `--socket=${run}/mysqld.sock`, '-uroot', '-N', '-B', '-e', 'SELECT id FROM v.t']);
    return out.split('\n').filter(Boolean).map(Number);
  },
  async stop(node, _dir, run) {
    await inside(node, ['mariadb-admin', '--no-defaults', `--socket=${run}/mysqld.sock`, '-uroot', 'shutdown']);
  },
};
