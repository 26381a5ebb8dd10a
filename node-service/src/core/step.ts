import { type FarmCore, stepFarm } from './farm-step.ts';
import { type MirrorCore, stepMirror } from './mirror-step.ts';
import type { CoreEvent, StepResult } from './types.ts';

export type ModuleCore = MirrorCore | FarmCore;

/** The one entry point of the pure core: state and event in, new state and actions out. */
export function step(core: ModuleCore, ev: CoreEvent): StepResult<ModuleCore> {
  return core.mode === 'mirror' ? stepMirror(core, ev) : stepFarm(core, ev);
}
