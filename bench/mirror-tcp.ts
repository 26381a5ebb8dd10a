/**
 * `node bench/mirror-tcp.ts server PORT` | `client HOST PORT MiB`: the raw TCP baseline between two
 * namespaces. The client sends MiB mebibytes and waits for the server's one-byte answer after the
 * last byte, then measures 1,000 one-byte round trips. Prints one JSON line.
 */
import { createServer, connect } from 'node:net';

const [mode, a, b, c] = process.argv.slice(2);
if (mode === 'server') {
  const srv = createServer((s) => {
    s.setNoDelay(true);
    let expect = -1;
    let got = 0;
    s.on('data', (d: Buffer) => {
      if (expect < 0) {
        expect = d.readUInt32BE(0) * (1 << 20);
        d = d.subarray(4);
      }
      if (got < expect) {
        got += d.length;
        if (got >= expect) s.write(Buffer.from([1]));
        return;
      }
      s.write(d); // ping-pong phase: echo
    });
  });
  srv.listen(Number(a), () => process.stdout.write('listening\n'));
} else {
  const mib = Number(c);
  const s = connect({ host: a, port: Number(b) }, async () => {
    s.setNoDelay(true);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(mib, 0);
    s.write(head);
    const chunk = Buffer.alloc(1 << 20, 5);
    const t0 = process.hrtime.bigint();
    const done = new Promise<void>((r) => s.once('data', () => r()));
    for (let i = 0; i < mib; i++) if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
    await done;
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const rtts: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const t = process.hrtime.bigint();
      await new Promise<void>((r) => {
        s.once('data', () => r());
        s.write(Buffer.from([2]));
      });
      rtts.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    rtts.sort((x, y) => x - y);
    process.stdout.write(`${JSON.stringify({ mbps: mib / secs, rttUs: rtts[500] })}\n`);
    s.destroy();
  });
}
