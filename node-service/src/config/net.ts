import { isIP } from 'node:net';

export interface Cidr {
  readonly addr: string;
  readonly prefix: number;
  readonly family: 4 | 6;
}

/** Parses "198.18.0.100/24" or "2001:db8::10/64". */
export function parseCidr(text: string): Cidr | undefined {
  const [addr, prefixText, extra] = text.split('/');
  if (extra !== undefined || prefixText === undefined || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const family = isIP(addr);
  if (family === 0) return undefined;
  const prefix = Number(prefixText);
  if (prefix > (family === 4 ? 32 : 128)) return undefined;
  return { addr, prefix, family: family as 4 | 6 };
}

export function ipv4ToInt(addr: string): number {
  return addr.split('.').reduce((acc, o) => (acc * 256 + Number(o)) >>> 0, 0);
}

/** True when a host address of an IPv4 CIDR is the network or broadcast address of its subnet. */
export function isIpv4NetworkOrBroadcast(c: Cidr): boolean {
  if (c.family !== 4 || c.prefix >= 31) return false;
  const host = ipv4ToInt(c.addr);
  const mask = c.prefix === 0 ? 0 : (0xffffffff << (32 - c.prefix)) >>> 0;
  return (host & ~mask) >>> 0 === 0 || (host | ~mask) >>> 0 === 0xffffffff;
}
