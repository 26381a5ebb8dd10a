/**
 * PostgreSQL 15 (Debian's postgresql-15) and pgbench for bench:mirror: a cluster initialised in a
 * directory (plain, or the Vigil view), TPC-B-like runs with synchronous_commit = on, fsync = on.
 * Every command runs through `run` (inside node a's namespaces), as the postgres user.
 */
import { median } from './stats.ts';

const BIN = '/usr/lib/postgresql/15/bin';
const AS_PG = ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--'];

export type Run = (cmd: string[]) => Promise<string>;

export interface PgbenchResult {
  /** clients → tps of each run */
  runs: Map<number, number[]>;
  median(clients: number): number;
}

/** initdb + start in `dir` (created, owned by postgres), pgbench -i, the runs, stop; the cluster is removed */
export async function pgbench(run: Run, opts: { dir: string; sock: string; clients: number[]; seconds: number; rounds: number; scale: number }): Promise<PgbenchResult> {
  const { dir, sock } = opts;
  await run(['sh', '-c', `rm -rf ${dir} ${sock} && mkdir -p ${dir} ${sock} && chown postgres:postgres ${dir} ${sock} && chmod 700 ${dir}`]);
  await run([...AS_PG, `${BIN}/initdb`, '-D', dir, '-N', '-A', 'trust', '-U', 'postgres', '--no-instructions']);
  const conf = `-c listen_addresses='' -k ${sock} -c synchronous_commit=on -c fsync=on -c shared_buffers=128MB -c max_wal_size=2GB -c checkpoint_timeout=30min`;
  await run([...AS_PG, `${BIN}/pg_ctl`, '-D', dir, '-o', conf, '-l', `${sock}/postgresql.log`, '-w', '-t', '120', 'start']);
  const runs = new Map<number, number[]>();
  try {
    await run([`${BIN}/pgbench`, '-h', sock, '-U', 'postgres', '-i', '-q', '-s', String(opts.scale), 'postgres']);
    await run([`${BIN}/psql`, '-h', sock, '-U', 'postgres', '-qAt', '-c', 'CHECKPOINT', 'postgres']);
    for (let r = 0; r < opts.rounds; r++) {
      for (const c of opts.clients) {
        const out = await run([`${BIN}/pgbench`, '-h', sock, '-U', 'postgres', '-n', '-c', String(c), '-j', String(Math.min(c, 2)), '-T', String(opts.seconds), 'postgres']);
        const m = /tps = ([0-9.]+) \(without initial connection time\)/.exec(out);
        if (!m) throw new Error(`pgbench printed no tps:\n${out}`);
        runs.set(c, [...(runs.get(c) ?? []), Number(m[1])]);
      }
    }
  } finally {
    await stopPg(run, dir);
    await run(['rm', '-rf', dir, sock]);
  }
  return { runs, median: (c) => median(runs.get(c) ?? [0]) };
}

export async function stopPg(run: Run, dir: string): Promise<void> {
  await run([...AS_PG, `${BIN}/pg_ctl`, '-D', dir, '-m', 'fast', '-w', 'stop']).catch(() => run([...AS_PG, `${BIN}/pg_ctl`, '-D', dir, '-m', 'immediate', '-w', 'stop']).catch(() => ''));
}
