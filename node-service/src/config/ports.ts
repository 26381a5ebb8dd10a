/** Ports derived from a module id (contract: SafeKit's numbering, so firewalls written for it still fit). */
export interface ModulePorts {
  readonly heartbeat: number; // udp
  readonly replication: number; // tcp
  readonly farm: number; // udp
}

export function modulePorts(id: number): ModulePorts {
  return { heartbeat: 8888 + id - 1, replication: 5600 + (id - 1) * 4, farm: 4803 + (id - 1) * 3 };
}
