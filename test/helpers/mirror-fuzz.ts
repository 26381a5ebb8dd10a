/**
 * `node --import tsx mirror-fuzz.ts HOST PORT SECRET_HEX OUTSIDE_DIR`: attacks a secondary's
 * replication port — wrong secret, pre-authentication garbage, then (authenticated) fast-check
 * generated frames: malformed framing, unknown operations, hostile paths ('..', absolute, NUL, symlink
 * escapes). Prints one JSON line with what happened. The test checks afterwards that the secondary still
 * answers and that nothing appeared outside the replicated directory.
 */
import fc from 'fast-check';
import { connect } from 'node:net';
import { connectToSecondary } from '../../node-service/src/mirror/channel.ts';
import { encodeFrame } from '../../node-service/src/mirror/protocol.ts';

const [host, portText, secretHex, outside] = process.argv.slice(2);
const port = Number(portText);
const key = Buffer.from(secretHex, 'hex');
const result: Record<string, unknown> = {};

async function rawSend(bytes: Buffer): Promise<void> {
  await new Promise<void>((resolve) => {
    const s = connect({ host, port }, () => {
      s.write(bytes);
      setTimeout(() => (s.destroy(), resolve()), 30);
    });
    s.on('error', () => resolve());
  });
}

// 1. wrong secret
try {
  await connectToSecondary({ addrs: [host], port, key: Buffer.from('not-the-cluster-secret-at-all!!'), module: 'mirror', node: 'evil' });
  result.wrongSecret = 'ACCEPTED';
} catch (e) {
  result.wrongSecret = `refused: ${(e as Error).message}`;
}

// 2. garbage before authentication
await fc.assert(
  fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 9000 }), async (bytes) => {
    await rawSend(Buffer.from(bytes));
  }),
  { numRuns: 30 },
);

// 3. authenticated, hostile frames
const { ch } = await connectToSecondary({ addrs: [host], port, key, module: 'mirror', node: 'fuzzer' });
let acks = 0;
ch.start((f) => {
  if (f.h.t === 'ack') acks++;
});
const hostilePath = fc.oneof(
  fc.constantFrom('..', '../x', 'a/../../x', '/etc/passwd', `${outside}/pwned`, 'esc/pwned', 'esc', 'ok/../..', '', '.', 'a//b', 'a/./b', 'x\0y', 'dir/esc2/pwned'),
  fc.string({ maxLength: 30 }),
);
const ops = fc.constantFrom('write', 'data', 'truncate', 'create', 'mkdir', 'unlink', 'rmdir', 'rename', 'symlink', 'link', 'chmod', 'chown', 'utimens', 'fsync', 'ensure', 'list', 'remove', 'meta', 'nop', 'base', 'synced', 'bogus');
const frame = fc.record({
  t: ops,
  d: fc.oneof(fc.constant(0), fc.integer({ min: -2, max: 3 }), fc.constant('0' as unknown as number)),
  p: hostilePath,
  to: hostilePath,
  tg: fc.constantFrom(outside, `${outside}/x`, '../../../..', 'ok'),
  o: fc.oneof(fc.nat(1 << 20), fc.constant(-1), fc.constant(2 ** 60)),
  s: fc.oneof(fc.nat(1 << 20), fc.constant(-5)),
  m: fc.oneof(fc.constant(0o644), fc.integer()),
  ty: fc.constantFrom('f', 'd', 'l', 'x'),
  n: fc.oneof(fc.constant(['a']), fc.constant('x' as unknown as string[])),
  u: fc.constant(0),
  g: fc.constant(0),
  a: fc.constant(0),
  mt: fc.constant(0),
});
// plant escape attempts first: symlinks inside the directory pointing outside
ch.send(encodeFrame({ t: 'symlink', q: 1, d: 0, p: 'esc', tg: outside }));
ch.send(encodeFrame({ t: 'mkdir', q: 2, d: 0, p: 'dir', m: 0o755 }));
ch.send(encodeFrame({ t: 'symlink', q: 3, d: 0, p: 'dir/esc2', tg: outside }));
// a listing through those symlinks must not remove what is outside (the caller keeps a file there)
ch.send(encodeFrame({ t: 'list', q: 4, d: 0, p: 'esc', n: [] }));
ch.send(encodeFrame({ t: 'list', q: 5, d: 0, p: 'dir/esc2', n: [] }));
let q = 10;
let sent = 0;
await fc.assert(
  fc.asyncProperty(frame, fc.uint8Array({ maxLength: 2000 }), async (h, data) => {
    ch.send(encodeFrame({ ...h, q: q++ }, Buffer.from(data)));
    sent++;
    if (sent % 50 === 0) await new Promise((r) => setTimeout(r, 5));
  }),
  { numRuns: 3000 },
);
// malformed framing on the authenticated channel ends this connection only
ch.send(Buffer.from([0, 0, 0, 9, 0, 0, 0, 3, 0x7b, 0x7d, 0x7d, 1, 2]));
ch.send(Buffer.from([0xff, 0xff, 0xff, 0xff]));
await new Promise((r) => setTimeout(r, 500));
result.framesSent = sent;
result.acks = acks;
result.closedAfterMalformed = ch.closed;
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
