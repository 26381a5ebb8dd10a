import { connect, createServer, type Server, type Socket } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { Secret } from '../config/secret.ts';
import { KeyRing } from '../secure/keyring.ts';

/**
 * The replication channel runs inside TLS 1.3, keyed from the cluster secret with an external
 * pre-shared key (RFC 8446 §2.2): no certificate to issue, copy or renew, and a peer without the
 * secret cannot finish the handshake. The PSK is derived per module with HKDF (secure/keyring.ts),
 * never the secret itself; OpenSSL offers psk_dhe_ke, so every connection also runs an ECDHE
 * exchange and a key stolen later does not decrypt recorded traffic (forward secrecy). The PSK
 * identity names the key id, so during a rotation the secondary accepts either secret.
 *
 * The channel's own challenge-response (channel.ts) then runs keyed by keying material exported
 * from this TLS session (RFC 5705/8446 exporter): it proves both ends hold this session, whatever
 * secret each one sends with during a rotation.
 *
 * OpenSSL binds external PSKs given through its PSK callbacks to SHA-256, hence the two SHA-256
 * TLS 1.3 suites (AES-128-GCM, with AES-NI the fastest; ChaCha20-Poly1305 for CPUs without it).
 */
const CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256';
const HANDSHAKE_MS = 5000;

const fromSecret = new WeakMap<Secret, KeyRing>();

/** The keys of a replication endpoint: the daemon's live key ring, or one made from a bare secret (tests, tools). */
export function replicationRing(o: { keys?: KeyRing; secret?: Secret; key?: Buffer }): KeyRing {
  if (o.keys) return o.keys;
  if (o.secret) {
    let r = fromSecret.get(o.secret);
    if (!r) fromSecret.set(o.secret, (r = new KeyRing(o.secret)));
    return r;
  }
  if (o.key) return new KeyRing(new Secret(o.key));
  throw new Error('replication needs the cluster secret');
}

const label = (module: string) => `replication/${module}`;
const identity = (id: Buffer, module: string) => `vigil/${id.toString('hex')}/${module}`;

/** `replication.encryption: none`: the channel in clear (its challenge-response keyed by the secret itself) */
export const isPlain = (module: { replication?: { encryption?: string } }): boolean => module.replication?.encryption === 'none';

/** Resolves with the socket once `ready` fires, or rejects at the timeout or on its first error. */
function connected<S extends Socket>(s: S, ready: 'connect' | 'secureConnect', o: { host: string; port: number; timeoutMs: number }, explain: (e: Error) => string = (e) => e.message): Promise<S> {
  return new Promise<S>((resolve, reject) => {
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`connect ${o.host}:${o.port}: timeout`));
    }, o.timeoutMs);
    s.once(ready, () => {
      clearTimeout(t);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      s.destroy();
      reject(new Error(explain(e)));
    });
  });
}

/** Primary side without TLS (replication.encryption: none). */
export function plainConnect(o: { host: string; port: number; timeoutMs: number }): Promise<Socket> {
  return connected(connect({ host: o.host, port: o.port }), 'connect', o);
}

/** Secondary side without TLS (replication.encryption: none). */
export function plainServer(onSocket: (s: Socket) => void): Server {
  return createServer(onSocket);
}

/** Primary side: a TLS 1.3 connection to the secondary, authenticated by the cluster secret. */
export function secureConnect(o: { host: string; port: number; ring: KeyRing; module: string; timeoutMs: number }): Promise<TLSSocket> {
  const k = o.ring.sending;
  const s = tls.connect({
    host: o.host,
    port: o.port,
    minVersion: 'TLSv1.3',
    ciphers: CIPHERS,
    pskCallback: () => ({ psk: k.key(label(o.module)), identity: identity(k.id, o.module) }),
    // PSK authenticates the server: there is no certificate to check
    checkServerIdentity: () => undefined,
  });
  return connected(s, 'secureConnect', o, (e) => `${o.host}:${o.port}: ${/alert|decrypt|psk|handshake/i.test(e.message) ? 'TLS handshake refused (the peer holds another cluster secret?)' : e.message}`);
}

/**
 * Secondary side: a TLS server that completes the handshake only with a primary holding an accepted
 * secret. `refused` hears every failed handshake (wrong secret, garbage, a scanner) with its reason.
 */
export function secureServer(o: { ring: KeyRing; module: string; onSocket: (s: TLSSocket) => void; refused: (from: string | undefined, reason: string) => void }): tls.Server {
  const server = tls.createServer(
    {
      minVersion: 'TLSv1.3',
      ciphers: CIPHERS,
      handshakeTimeout: HANDSHAKE_MS,
      pskCallback: (_socket, id) => {
        const m = /^vigil\/([0-9a-f]{8})\/(.+)$/.exec(id);
        if (!m || m[2] !== o.module) return null;
        return o.ring.byId(Buffer.from(m[1], 'hex'))?.key(label(o.module)) ?? null;
      },
    },
    o.onSocket,
  );
  server.on('tlsClientError', (e, s) => o.refused(s.remoteAddress, /psk|alert|decrypt|bad key|handshake/i.test(e.message) ? `TLS handshake failed: not the cluster secret, or not a Vigil peer (${e.message.split('\n')[0].slice(0, 120)})` : e.message));
  return server;
}

/** The key the channel's challenge-response uses: exported from this TLS session, the same on both ends. */
export function channelKey(s: TLSSocket): Buffer {
  return s.exportKeyingMaterial(32, 'EXPORTER-vigil-replication-auth', Buffer.from('vigil'));
}
