/**
 * The contract shared by node-service, cloud-adapters, functions and infra (docs/ARCHITECTURE.md
 * "Contract"): module states and modes, the health URL and port formula, the `vigil state --json`
 * object, and the signed cloud event. Each is declared here once; the other packages import it.
 */
export * from './states.ts';
export * from './health.ts';
export * from './module-status.ts';
export * from './events.ts';
