import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';
import { openApi } from '../api/http-client.ts';
import type { NodeSnapshot } from './feed.ts';
import { SSE_PING_MS } from './sse.ts';

/** Where a peer's admin API answers. */
export interface PeerTarget {
  readonly node: string;
  readonly addr: string;
  readonly port: number;
  /** set when the API is HTTPS: the CA (or the shared self-signed certificate) that signs the peers' */
  readonly ca?: Buffer;
}

export const peerUrl = (t: PeerTarget, path: string): string => `${t.ca ? 'https' : 'http'}://${isIPv6(t.addr) ? `[${t.addr}]` : t.addr}:${t.port}${path}`;

const open = (t: PeerTarget, method: string, path: string, token: string, body: string | undefined, timeoutMs: number): Promise<IncomingMessage> =>
  openApi(peerUrl(t, path), { method, token, body, ca: t.ca, timeoutMs });

/** an operator's reading of a connection error (the code stays, for searching) */
const reason = (e: unknown): string => {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused: is its daemon running? (ECONNREFUSED)';
    case 'ECONNRESET':
      return 'connection lost: its daemon stopped or crashed (ECONNRESET)';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `no route to it (${err.code})`;
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `its certificate is not trusted here: copy the same api.tls pair to every node or set api.tls.ca (${err.code})`;
    default:
      return err.code ? `${err.message} (${err.code})` : err.message;
  }
};

/** One request to a peer's API with the operator's token; the peer checks the role itself. */
export async function peerRequest(t: PeerTarget, method: 'GET' | 'POST', path: string, token: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  let res: IncomingMessage;
  try {
    res = await open(t, method, path, token, body === undefined ? undefined : JSON.stringify(body), 10_000);
  } catch (e) {
    return { status: 502, body: { error: `node ${t.node} does not answer at ${peerUrl(t, '')} (${reason(e)})` } };
  }
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return { status: res.statusCode ?? 502, body: JSON.parse(text) };
  } catch {
    return { status: 502, body: { error: `node ${t.node} answered ${res.statusCode} with a body that is not JSON` } };
  }
}

export interface PeerWatch {
  stop(): void;
}

/**
 * Follows a peer's `GET /api/v1/watch` stream. The peer pings every second, so three seconds of
 * silence, a refused connection, a reset or a refusal of the token all report the peer down at once
 * (with the reason); the stream is reopened every second until it answers again (every 10 s after
 * a refusal of the token, which each try would log on the peer).
 */
export function watchPeer(t: PeerTarget, token: string, onSnapshot: (s: NodeSnapshot) => void, onDown: (why: string) => void): PeerWatch {
  let stopped = false;
  let res: IncomingMessage | undefined;
  let retry: NodeJS.Timeout | undefined;
  let silence: NodeJS.Timeout | undefined;
  let attempt = 0;

  const downOf = (why: string, of: number) => {
    if (of !== attempt) return; // a late event of a connection already given up
    attempt += 1;
    clearTimeout(silence);
    res?.destroy();
    res = undefined;
    if (stopped) return;
    onDown(why);
    clearTimeout(retry);
    // a refused token stays refused until someone edits the token files: ask again less often
    retry = setTimeout(connect, why.startsWith('refused') ? 10_000 : 1000);
  };
  const armSilence = (of: number) => {
    clearTimeout(silence);
    silence = setTimeout(() => downOf(`no answer for ${(3 * SSE_PING_MS) / 1000} s`, of), 3 * SSE_PING_MS);
  };

  function connect(): void {
    if (stopped) return;
    const mine = attempt;
    const down = (why: string) => downOf(why, mine);
    open(t, 'GET', '/api/v1/watch', token, undefined, 3 * SSE_PING_MS).then(
      (r) => {
        if (stopped) return void r.destroy();
        if (r.statusCode !== 200) {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => {
            let msg = `HTTP ${r.statusCode}`;
            try {
              msg = (JSON.parse(Buffer.concat(chunks).toString()) as { error?: string }).error ?? msg;
            } catch {
              /* keep the status */
            }
            down(`refused: ${msg}`);
          });
          return;
        }
        res = r;
        r.setEncoding('utf8');
        armSilence(mine);
        let buf = '';
        r.on('data', (chunk: string) => {
          armSilence(mine);
          buf += chunk;
          let end: number;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
            if (data) {
              try {
                onSnapshot(JSON.parse(data) as NodeSnapshot);
              } catch {
                /* a garbled event: the next one replaces it */
              }
            }
          }
        });
        r.on('end', () => down('connection closed: its daemon stopped'));
        r.on('error', (e) => down(reason(e)));
      },
      (e) => down(reason(e)),
    );
  }
  connect();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(retry);
      clearTimeout(silence);
      res?.destroy();
    },
  };
}
