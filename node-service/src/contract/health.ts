/**
 * The health URL and the port formula (contract: docs/ARCHITECTURE.md "Health URL", "Configuration").
 *
 *   GET http://NODE:<api.port>/var/modules/<module>/ready.txt → 200 "OK" when ready, 404 "NOT FOUND" else
 *   module id N: heartbeat udp 8888+N-1, replication tcp 5600+(N-1)*4 (4 ports), farm udp 4803+(N-1)*3 (3 ports)
 */

/** api.port when cluster.yaml does not set it: the health URL and the admin API. */
export const DEFAULT_API_PORT = 9010;
export const READY_BODY = 'OK';
export const NOT_READY_BODY = 'NOT FOUND';

/** Path of a module's health URL. */
export function readyPath(module: string): string {
  return `/var/modules/${module}/ready.txt`;
}

/** Full health URL of a module on a node (IPv6 addresses bracketed). */
export function readyUrl(address: string, port: number, module: string): string {
  const host = address.includes(':') ? `[${address}]` : address;
  return `http://${host}:${port}${readyPath(module)}`;
}

/** Ports derived from a module id (contract: SafeKit's numbering, so firewalls written for it still fit). */
export interface ModulePorts {
  readonly heartbeat: number; // udp
  readonly replication: number; // tcp, 4 ports from here
  readonly farm: number; // udp, 3 ports from here
}

export function modulePorts(id: number): ModulePorts {
  return { heartbeat: 8888 + id - 1, replication: 5600 + (id - 1) * 4, farm: 4803 + (id - 1) * 3 };
}
