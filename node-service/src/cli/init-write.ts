import { closeSync, existsSync, fchmodSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CliError } from './client.ts';
import type { InitPlan, PlannedFile } from './init-plan.ts';

/** What was written and what was kept (an operator's script that already existed). */
export interface InitResult {
  readonly written: readonly PlannedFile[];
  readonly kept: readonly PlannedFile[];
}

/**
 * Writes the plan. Without force, an existing cluster.yaml, key or token stops everything before the
 * first write. Each file is written beside its target with its final mode from the start (a secret
 * is never readable by others, whatever the umask), synced, then renamed over the target.
 */
export function writeInit(plan: InitPlan, force: boolean): InitResult {
  const existing = plan.files.filter((f) => !f.keep && existsSync(f.path));
  if (existing.length > 0 && !force) {
    throw new CliError(
      `${existing.map((f) => f.path).join(', ')} already exist${existing.length === 1 ? 's' : ''}: nothing was written. ` +
        'Use --force to replace them (a new cluster.key must then be copied to every node).',
    );
  }
  const written: PlannedFile[] = [];
  const kept: PlannedFile[] = [];
  for (const f of plan.files) {
    if (f.keep && existsSync(f.path)) {
      kept.push(f);
      continue;
    }
    mkdirSync(dirname(f.path), { recursive: true, mode: 0o755 });
    const tmp = join(dirname(f.path), `.${basename(f.path)}.${process.pid}.tmp`);
    const fd = openSync(tmp, 'wx', f.mode);
    try {
      fchmodSync(fd, f.mode);
      writeSync(fd, f.content);
      fsyncSync(fd);
    } catch (e) {
      closeSync(fd);
      rmSync(tmp, { force: true });
      throw e;
    }
    closeSync(fd);
    renameSync(tmp, f.path);
    written.push(f);
  }
  return { written, kept };
}
