import { MultiBar, Presets } from 'cli-progress';
import type { ModuleStatus } from '../daemon/module-runner.ts';
import { stateTable } from './format.ts';

/** `vigil state --watch`: the table, refreshed, with a progress bar per module that is resyncing. */
export async function watchState(fetchAll: () => Promise<ModuleStatus[]>): Promise<void> {
  const bars = new MultiBar({ format: ' {module} resync |{bar}| {percentage}% {done}/{total} MiB {rate} MiB/s eta {eta_formatted}', hideCursor: true, clearOnComplete: false }, Presets.shades_classic);
  const active = new Map<string, ReturnType<MultiBar['create']>>();
  for (;;) {
    let all: ModuleStatus[];
    try {
      all = await fetchAll();
    } catch (e) {
      process.stdout.write(`\x1b[2J\x1b[H${(e as Error).message}\n`);
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    bars.stop();
    process.stdout.write(`\x1b[2J\x1b[H${new Date().toISOString()}\n${stateTable(all)}\n\n`);
    for (const s of all) {
      const r = s.resync as { bytesDone?: number; bytesTotal?: number; rateBps?: number };
      if (!r.bytesTotal) {
        active.delete(s.module);
        continue;
      }
      const mib = (n: number) => Math.round(n / 1048576);
      const payload = { module: s.module, done: mib(r.bytesDone ?? 0), total: mib(r.bytesTotal), rate: ((r.rateBps ?? 0) / 1048576).toFixed(1) };
      const bar = bars.create(r.bytesTotal, r.bytesDone ?? 0, payload);
      active.set(s.module, bar);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
