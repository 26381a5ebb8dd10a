/** Small IPv4 CIDR helpers for choosing fixed private addresses at synth time (no network, no lookups). */
import { isIP } from 'node:net';
import { ipv4ToInt } from '../../node-service/src/config/net.ts';

export interface Ipv4Cidr {
  readonly network: number;
  readonly prefix: number;
  readonly size: number;
}

/** The daemon's IPv4 parser (node-service/src/config/net.ts), after node:net's validation: one parser. */
function toInt(addr: string): number | undefined {
  return isIP(addr) === 4 ? ipv4ToInt(addr) : undefined;
}

export function toAddr(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

export function parseIpv4(addr: string): number {
  const n = toInt(addr);
  if (n === undefined) throw new Error(`"${addr}" is not an IPv4 address`);
  return n;
}

export function parseIpv4Cidr(cidr: string): Ipv4Cidr {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  const addr = m ? toInt(m[1]) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (addr === undefined || !(prefix >= 0 && prefix <= 32)) throw new Error(`"${cidr}" is not an IPv4 CIDR block (e.g. 10.0.1.0/24)`);
  const size = 2 ** (32 - prefix);
  return { network: addr - (addr % size), prefix, size };
}

export function cidrContains(cidr: string, addr: string): boolean {
  const c = parseIpv4Cidr(cidr);
  const a = parseIpv4(addr);
  return a >= c.network && a < c.network + c.size;
}

/**
 * The address `offset` hosts into `cidr`. Throws when the offset falls into the addresses a cloud
 * reserves: AWS and Azure keep the first 4 and the last one of each subnet, GCP the first 2 and last 2.
 */
export function hostAt(cidr: string, offset: number, reserved: { readonly first: number; readonly last: number } = { first: 4, last: 1 }): string {
  const c = parseIpv4Cidr(cidr);
  if (!Number.isInteger(offset) || offset < reserved.first || offset > c.size - 1 - reserved.last) {
    throw new Error(`host offset ${offset} is outside the usable addresses of ${cidr} (${reserved.first}..${c.size - 1 - reserved.last})`);
  }
  return toAddr(c.network + offset);
}

/** True when `addr` is usable in `cidr` (inside it and not one of the reserved addresses). */
export function isUsableHost(cidr: string, addr: string, reserved: { readonly first: number; readonly last: number } = { first: 4, last: 1 }): boolean {
  const c = parseIpv4Cidr(cidr);
  const a = toInt(addr);
  if (a === undefined) return false;
  const off = a - c.network;
  return off >= reserved.first && off <= c.size - 1 - reserved.last;
}
