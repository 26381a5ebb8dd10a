// The soak's eyes on the LAN, in the client's namespace (node soak/probe.mjs URL...): polls every URL
// (the nodes' ready.txt) every 20 ms (VIGIL_PROBE_EVERY_MS) and prints {k:"ready", t, r:[status...]} whenever the answers change,
// and {k:"rounds", n} every second; answers requests given on stdin as {id, url, method?, headers?, timeoutMs?}
// with {k:"reply", id, status, body} (status 0: no answer).
import http from 'node:http';
import { createInterface } from 'node:readline';

const urls = process.argv.slice(2);
// the soak samples every 20 ms; --scale asks for less (64 URLs every 20 ms are 3,200 requests a second
// on the node that is taking over, which then measures the probe more than the takeover)
const EVERY_MS = Number(process.env.VIGIL_PROBE_EVERY_MS ?? 20);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

function get(url, { method = 'GET', headers = {}, timeoutMs = 1000 } = {}) {
  return new Promise((resolve) => {
    const req = http.request(url, { method, headers, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', () => resolve({ status: 0, body: '' }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

let last = '';
let rounds = 0;
async function poll() {
  for (;;) {
    const t = Date.now();
    const r = await Promise.all(urls.map((u) => get(u, { timeoutMs: 200 }).then((x) => x.status)));
    rounds += 1;
    const key = r.join(',');
    if (key !== last || r.filter((s) => s === 200).length > 1) out({ k: 'ready', t, r });
    last = key;
    await new Promise((res) => setTimeout(res, Math.max(0, EVERY_MS - (Date.now() - t))));
  }
}
setInterval(() => out({ k: 'rounds', n: rounds }), 1000);
createInterface({ input: process.stdin }).on('line', async (line) => {
  const m = JSON.parse(line);
  const r = await get(m.url, m);
  out({ k: 'reply', id: m.id, ...r });
});
process.stdin.on('end', () => process.exit(0));
void poll();
