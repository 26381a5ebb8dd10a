/**
 * The demo's application and client, as source text: the application runs on the primary (started by
 * start_prim) and appends fsync'd records into the replicated directory; the client runs in the
 * client's namespace and writes through the virtual IP, printing one JSON line per request.
 */
export function appSource(dataDir: string): string {
  return `
const http = require('http'), fs = require('fs');
const file = ${JSON.stringify(dataDir)} + '/records.log';
const fd = fs.openSync(file, 'a');
http.createServer((q, s) => {
  if (q.method === 'POST') {
    const seq = Number(new URL(q.url, 'http://x').searchParams.get('seq'));
    fs.writeSync(fd, seq + '\\n');
    fs.fsyncSync(fd); // acknowledged only once both nodes have it (synchronous replication)
    return s.end('ok ' + process.env.VIGIL_NODE);
  }
  const seqs = fs.readFileSync(file, 'utf8').split('\\n').filter(Boolean).map(Number);
  s.end(JSON.stringify({ node: process.env.VIGIL_NODE, seqs }));
}).listen(8080);
`;
}

export function clientSource(vip: string, intervalMs: number): string {
  return `
const http = require('http');
let seq = 0;
function once() {
  const n = ++seq;
  const started = Date.now();
  const req = http.request({ host: ${JSON.stringify(vip)}, port: 8080, method: 'POST', path: '/?seq=' + n, timeout: 300 }, (res) => {
    let body = '';
    res.on('data', (d) => (body += d));
    res.on('end', () => { console.log(JSON.stringify({ seq: n, ok: res.statusCode === 200, node: body.split(' ')[1], t: started, end: Date.now() })); next(started); });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => { console.log(JSON.stringify({ seq: n, ok: false, t: started, end: Date.now() })); next(started); });
  req.end();
}
function next(started) { setTimeout(once, Math.max(0, ${intervalMs} - (Date.now() - started))); }
once();
`;
}
