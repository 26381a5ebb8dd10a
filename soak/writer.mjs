// The soak's writer, in the client's namespace (node soak/writer.mjs VIP PORT INTERVAL_MS SLOTS): one
// request at a time through the VIP, alternating fsync'd appends and renames of fsync'd files; one JSON
// line per request: {seq, op, slot?, ok, node, t, end}. ok means the application said the record is durable.
import http from 'node:http';

const [vip, port, interval, slots] = process.argv.slice(2);
let seq = 0;
function once() {
  const n = ++seq;
  const op = n % 3 === 0 ? 'put' : 'append';
  const slot = n % Number(slots);
  const path = op === 'put' ? `/put?seq=${n}&slot=${slot}` : `/append?seq=${n}`;
  const t = Date.now();
  const done = (ok, node) => {
    process.stdout.write(`${JSON.stringify({ seq: n, op, slot: op === 'put' ? slot : undefined, ok, node, t, end: Date.now() })}\n`);
    setTimeout(once, Math.max(0, Number(interval) - (Date.now() - t)));
  };
  const req = http.request({ host: vip, port: Number(port), method: 'POST', path, timeout: 3000 }, (res) => {
    let body = '';
    res.on('data', (d) => (body += d));
    res.on('end', () => done(res.statusCode === 200, body.split(' ')[1]));
    res.on('error', () => done(false));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => done(false));
  req.end();
}
once();
