/**
 * Heartbeat defaults. 100 ms / 1 s keeps a failover near one second (keepalived's advert_int 1 takes
 * about 3.5 s). False "peer lost" under load is prevented by the monitor, which measures staleness
 * from receive times and drains the socket before deciding after its own event loop stalled, not by
 * a long timeout. Farm uses the same defaults (SafeKit's farm default is at most 2 s).
 */
export const DEFAULT_PULSE_MS = 100;
export const DEFAULT_TIMEOUT_MS = 1000;
export const DEFAULT_CONFIG_FILE = '/etc/vigil/cluster.yaml';
export const MIN_SECRET_BYTES = 16;
