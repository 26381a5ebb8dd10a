import { AppCluster, sleep } from './app-cluster.ts';
import { startClientLoop, type Sample } from './vip-topology.ts';

export type WebServer = 'nginx' | 'apache';
const PORT = 8080;

/** A self-contained configuration per server: everything (pid, logs, temp files, content) under the node's private folder. */
function serverFiles(kind: WebServer, priv: string, node: string): Record<string, string> {
  const www = { 'www/index.html': node };
  if (kind === 'nginx') {
    const tmp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${priv}/tmp/${t};`).join('\n');
    return {
      ...www,
      'tmp/.keep': '',
      'nginx.conf': `worker_processes 1;\npid ${priv}/nginx.pid;\nerror_log ${priv}/error.log;\nevents { worker_connections 512; }\nhttp {\n  access_log off;\n${tmp}\n  server {\n    listen ${PORT};\n    root ${priv}/www;\n  }\n}\n`,
    };
  }
  const mod = (m: string, f: string) => `LoadModule ${m}_module /usr/lib/apache2/modules/mod_${f}.so`;
  return {
    ...www,
    'run/.keep': '',
    'apache2.conf': [
      'ServerRoot /etc/apache2',
      'ServerName localhost',
      `Listen ${PORT}`,
      `PidFile ${priv}/apache2.pid`,
      `DefaultRuntimeDir ${priv}/run`,
      `Mutex file:${priv}/run default`,
      `ErrorLog ${priv}/error.log`,
      mod('mpm_event', 'mpm_event'),
      mod('authz_core', 'authz_core'),
      mod('dir', 'dir'),
      mod('mime', 'mime'),
      'TypesConfig /etc/mime.types',
      'User www-data',
      'Group www-data',
      `DocumentRoot ${priv}/www`,
      `<Directory ${priv}/www>\n  Require all granted\n</Directory>`,
      'DirectoryIndex index.html',
      '',
    ].join('\n'),
  };
}

/** Three nodes of a farm module made from the nginx or apache template, each server with its own files. */
export async function createWebFarm(kind: WebServer, prefix: string, subnet: string): Promise<AppCluster> {
  const priv = `/srv/${prefix}`;
  const set: Record<string, string> = {
    MODULE: 'web',
    VIP: `${subnet}.200/24`,
    PORT: String(PORT),
    BALANCE: 'client_session',
    DISTRO_SERVICE: '',
    STOP_SECONDS: '5',
  };
  if (kind === 'nginx') Object.assign(set, { NGINX_CONF: `${priv}/nginx.conf`, PID_FILE: `${priv}/nginx.pid`, ERROR_LOG: `${priv}/error.log` });
  else Object.assign(set, { APACHE_CONF: `${priv}/apache2.conf`, PID_FILE: `${priv}/apache2.pid`, APACHE_ENVVARS: '' });
  return AppCluster.create({ prefix, subnet, template: kind, set, privatePath: priv, nodes: 3, privateFiles: (n) => serverFiles(kind, priv, n) });
}

export interface FarmRun {
  /** requests sent during the whole run, and how many failed */
  readonly requests: number;
  /** web server stopped on node3: ms from the stop to the start of the last request that failed (0: none failed) */
  readonly stopGapMs: number;
  readonly stopFailed: number;
  /** requests started once the checker had taken node3 out that failed, or that node3 answered */
  readonly afterLeaveBad: number;
  /** node3 answered again after its web server was started */
  readonly returnedMs: number;
  readonly returnFailed: number;
  /** node2's namespace killed: ms from the kill to the start of the last failed request */
  readonly killGapMs: number;
  readonly killFailed: number;
  /** requests started 3 s after the kill that failed or that node2 answered */
  readonly afterKillBad: number;
  readonly servedBy: Record<string, number>;
}

const failuresFrom = (xs: readonly Sample[], t: number, until = Infinity) => xs.filter((x) => !x.ok && x.e >= t && x.s < until);
const gap = (fails: readonly Sample[], t: number) => (fails.length ? Math.max(0, Math.max(...fails.map((x) => x.s)) - t) : 0);

/**
 * The farm story with clients through the VIP (a new connection every 20 ms): all UP; the web server
 * of node3 stopped (its checker takes it out, its share moves); started again (the share returns);
 * node2's whole namespace killed -9 (its share moves).
 */
export async function runFarmStory(app: AppCluster, log: (m: string) => void = () => {}): Promise<FarmRun> {
  const c = app.c;
  for (const n of c.nodes) c.start(n.name);
  await c.waitFor({ node1: 'UP', node2: 'UP', node3: 'UP' }, 60_000);
  const loop = startClientLoop(c.lan, { url: `http://${app.vip}:${PORT}/`, period: 20, timeout: 1000 });
  try {
    for (const n of ['node1', 'node2', 'node3']) {
      if (!(await loop.waitFor((s) => s.ok && s.b === n, 15_000))) throw new Error(`${n} never answered through the VIP`);
    }
    await sleep(500);
    const pidFile = app.mod.values.PID_FILE;

    // 1. the web server of node3 stops (as a crash would): the checker notices, node3 leaves the farm
    const stopAt = Date.now();
    await app.inside('node3', ['sh', '-c', `kill -TERM $(cat ${pidFile})`]);
    await c.waitFor({ node3: 'WAIT' }, 15_000);
    const leftAt = Date.now();
    await sleep(2000);
    const afterLeave = loop.samples.filter((x) => x.s >= leftAt + 300);
    const afterLeaveBad = afterLeave.filter((x) => !x.ok || x.b === 'node3').length;
    const stopFails = failuresFrom(loop.samples, stopAt);
    log(`${app.mod.template.name}: web server stopped on node3: out of the farm after ${leftAt - stopAt} ms; ${stopFails.length} requests failed, the last started ${gap(stopFails, stopAt)} ms after the stop`);

    // 2. started again (by an operator): the checker sees it, node3 rejoins and gets its share back
    const startAt = Date.now();
    await app.inside('node3', [`${app.moduleDir}/scripts/start_both`]);
    await c.waitFor({ node3: 'UP' }, 15_000);
    const back = await loop.waitFor((x) => x.ok && x.b === 'node3' && x.s >= startAt, 15_000);
    const returnedMs = back ? back.e - startAt : -1;
    await sleep(1000);
    const returnFailed = failuresFrom(loop.samples, startAt).length;
    log(`${app.mod.template.name}: web server started on node3: node3 answered again ${returnedMs} ms later; ${returnFailed} requests failed meanwhile`);

    // 3. node2's whole namespace killed: the others take its share after the heartbeat timeout
    const killAt = Date.now();
    await app.killNamespace('node2');
    await sleep(3000);
    const settled = Date.now();
    await sleep(1500);
    const afterKillBad = loop.samples.filter((x) => x.s >= settled && (!x.ok || x.b === 'node2')).length;
    const killFails = failuresFrom(loop.samples, killAt);
    log(`${app.mod.template.name}: node2 killed: ${killFails.length} requests failed, the last started ${gap(killFails, killAt)} ms after the kill`);
    if (process.env.VIGIL_APP_DEBUG) {
      for (const x of loop.samples.filter((y) => !y.ok)) log(`failed: start ${x.s - stopAt} ms (stop at 0, start at ${startAt - stopAt}, kill at ${killAt - stopAt}), ${x.e - x.s} ms: ${x.b}`);
    }
    const servedBy: Record<string, number> = {};
    for (const x of loop.samples) if (x.ok) servedBy[x.b] = (servedBy[x.b] ?? 0) + 1;
    return {
      requests: loop.samples.length,
      stopGapMs: gap(stopFails, stopAt),
      stopFailed: stopFails.length,
      afterLeaveBad,
      returnedMs,
      returnFailed,
      killGapMs: gap(killFails, killAt),
      killFailed: killFails.length,
      afterKillBad,
      servedBy,
    };
  } finally {
    loop.stop();
  }
}
