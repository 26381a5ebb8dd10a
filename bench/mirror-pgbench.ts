/**
 * PostgreSQL 15 (Debian's postgresql-15) and pgbench for bench:mirror: a cluster initialised in a
 * directory (plain, or the Vigil view) and TPC-B-like runs with synchronous_commit = on, fsync = on.
 * Every command runs through `run` (inside node a's namespaces); the server runs as postgres.
 */
const BIN = '/usr/lib/postgresql/15/bin';
const AS_PG = ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--'];

export type Run = (cmd: string[]) => Promise<string>;

export class PgCluster {
  private started = false;

  constructor(
    private readonly run: Run,
    /** the data directory (created, owned by postgres) */
    readonly dir: string,
    /** the socket and log directory (outside the view) */
    readonly sock: string,
  ) {}

  /** initdb, start, pgbench -i at `scale`, checkpoint */
  async init(scale: number): Promise<void> {
    const { dir, sock } = this;
    await this.run(['sh', '-c', `rm -rf ${dir} ${sock} && mkdir -p ${dir} ${sock} && chown postgres:postgres ${dir} ${sock} && chmod 700 ${dir}`]);
    await this.run([...AS_PG, `${BIN}/initdb`, '-D', dir, '-N', '-A', 'trust', '-U', 'postgres', '--no-instructions']);
    const conf = `-c listen_addresses='' -k ${sock} -c synchronous_commit=on -c fsync=on -c shared_buffers=128MB -c max_wal_size=2GB -c checkpoint_timeout=30min`;
    await this.run([...AS_PG, `${BIN}/pg_ctl`, '-D', dir, '-o', conf, '-l', `${sock}/postgresql.log`, '-w', '-t', '120', 'start']);
    this.started = true;
    await this.run([`${BIN}/pgbench`, '-h', sock, '-U', 'postgres', '-i', '-q', '-s', String(scale), 'postgres']);
    await this.run([`${BIN}/psql`, '-h', sock, '-U', 'postgres', '-qAt', '-c', 'CHECKPOINT', 'postgres']);
  }

  /** one TPC-B-like run: transactions per second */
  async bench(clients: number, seconds: number): Promise<number> {
    const out = await this.run([`${BIN}/pgbench`, '-h', this.sock, '-U', 'postgres', '-n', '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds), 'postgres']);
    const m = /tps = ([0-9.]+) \(without initial connection time\)/.exec(out);
    if (!m) throw new Error(`pgbench printed no tps:\n${out}`);
    return Number(m[1]);
  }

  /** stops the server (fast, then immediate) and removes the cluster */
  async destroy(): Promise<void> {
    if (this.started) {
      this.started = false;
      await this.run([...AS_PG, `${BIN}/pg_ctl`, '-D', this.dir, '-m', 'fast', '-w', 'stop']).catch(() => this.run([...AS_PG, `${BIN}/pg_ctl`, '-D', this.dir, '-m', 'immediate', '-w', 'stop']));
    }
    await this.run(['rm', '-rf', this.dir, this.sock]);
  }
}
