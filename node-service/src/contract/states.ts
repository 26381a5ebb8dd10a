/**
 * Module states and modes (contract: docs/ARCHITECTURE.md "Module states"). SafeKit's names, because
 * operators and load-balancer probes know them. Declared here once; the core, the API, the functions
 * and the cloud adapters import them.
 */
import { z } from 'zod';

export const MODULE_STATES = ['STOP', 'WAIT', 'ALONE', 'PRIM', 'SECOND', 'UP'] as const;
export type ModuleState = (typeof MODULE_STATES)[number];
export const moduleStateSchema = z.enum(MODULE_STATES);

export const MODULE_MODES = ['mirror', 'farm'] as const;
export type ModuleMode = (typeof MODULE_MODES)[number];
export const moduleModeSchema = z.enum(MODULE_MODES);

export const PRIMARY_STATES: ReadonlySet<ModuleState> = new Set(['ALONE', 'PRIM']);
export const isPrimary = (s: ModuleState): boolean => PRIMARY_STATES.has(s);

/** ready.txt answers 200 in exactly these states (contract): PRIM/ALONE of a mirror, UP of a farm. */
export const isReady = (s: ModuleState): boolean => s === 'ALONE' || s === 'PRIM' || s === 'UP';

/** isReady for a state name read off the wire (an unknown name is never ready). */
export const isReadyName = (s: string): boolean => (MODULE_STATES as readonly string[]).includes(s) && isReady(s as ModuleState);
