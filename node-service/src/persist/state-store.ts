import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { FRESH, type Persisted } from '../core/types.ts';
import { writeFileAtomicAsync } from './atomic-file.ts';

const persistedSchema = z.object({
  gen: z.number().int().nonnegative(),
  primaryEpoch: z.number().int().nonnegative(),
  lastState: z.enum(['STOP', 'WAIT', 'ALONE', 'PRIM', 'SECOND', 'UP']),
  inSync: z.boolean(),
  stopped: z.boolean(),
  failover: z.boolean().optional(),
});

/** A module's decision state on disk: `<state_dir>/<module>/state.json`. */
export class StateStore {
  readonly file: string;
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = join(dir, 'state.json');
  }

  load(): Persisted {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      return FRESH;
    }
    const parsed = persistedSchema.safeParse(JSON.parse(text));
    if (!parsed.success) {
      // Refuse to guess: a node with an unreadable state must not believe its data is the latest.
      throw new Error(`${this.file} is corrupt (${parsed.error.issues[0]?.message}); move it aside to start as a fresh node (it will wait for its peer or vigil prim --force)`);
    }
    return parsed.data;
  }

  /** durable when it resolves; saves of one store must not overlap (the module runner chains them) */
  save(p: Persisted): Promise<void> {
    return writeFileAtomicAsync(this.file, JSON.stringify(p));
  }
}
