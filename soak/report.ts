import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SoakResult } from './run.ts';
import { RECOVERY_BOUND_MS, REACH_GRACE_MS, STEP_DOWN_MS } from './run.ts';

/** The end-of-run report: faults by kind, the timeline, every violation with its replay; last line RESULT. */
export function soakReport(r: SoakResult): string {
  const lines: string[] = [];
  const t0 = r.timeline[0]?.t ?? 0;
  const at = (t: number) => `${((t - t0) / 1000).toFixed(2)}s`;
  lines.push('', '== timeline (states: * = not in sync)');
  for (const e of r.timeline) lines.push(`  ${at(e.t).padStart(9)}  ${e.what}`);
  lines.push('', `== faults by kind (${r.faults} in ${r.episodes} episodes)`);
  for (const [k, n] of Object.entries(r.faultsByKind).sort((a, b) => b[1] - a[1])) lines.push(`  ${k.padEnd(16)} ${n}`);
  const rec = [...r.recoveries].sort((a, b) => a - b);
  lines.push(
    '',
    '== checks',
    `  acknowledged records: ${r.acked}; lost: ${r.durableLost}`,
    r.arbiter
      ? `  VIP/ready.txt samples (20 ms): ${r.samples}; both nodes serving, at any time (etcd arbiter; a stopped or killed daemon's VIP counts ${STEP_DOWN_MS} ms after it answers again): ${r.dualServingSamples}`
      : `  VIP/ready.txt samples (20 ms): ${r.samples}; both nodes serving while reachable (from ${REACH_GRACE_MS} ms after a separating fault ended): ${r.dualServingSamples}`,
    `  recovery to PRIM/SECOND in sync after a heal (bound ${RECOVERY_BOUND_MS} ms): median ${rec[Math.floor(rec.length / 2)] ?? 0} ms, max ${rec.at(-1) ?? 0} ms`,
    `  daemon RSS growth: ${r.rssGrowthMb} MiB`,
    '',
    `== violations: ${r.violations.length}`,
  );
  for (const v of r.violations) {
    const kinds = `${r.arbiter ? '' : ' --no-arbiter'}${r.kinds ? ` --kinds ${r.kinds.join(',')}` : ''}`;
    lines.push(`  ${v.kind} at ${at(v.t)} in episode #${v.episode} (replay: npm run soak -- --seed ${r.seed}${kinds} --from ${Math.max(0, v.episode)} --episodes 1)`);
    lines.push(`    ${v.detail.split('\n').join('\n    ')}`);
  }
  if (r.warnings.length) lines.push('', `== Node warnings in the daemon logs (not counted): ${r.warnings.length}`, ...r.warnings.map((w) => `  ${w}`));
  lines.push('', `topology: ${r.arbiter ? 'etcd arbiter and ping witness' : 'ping witness, no arbiter'}; node logs: ${r.dir}`);
  lines.push(resultLine(r));
  return lines.join('\n');
}

export function resultLine(r: SoakResult): string {
  return `RESULT minutes=${r.minutes} faults=${r.faults} durable_lost=${r.durableLost} dual_serving_samples=${r.dualServingSamples} max_recovery_ms=${Math.max(0, ...r.recoveries)} rss_growth_mb=${r.rssGrowthMb} unhandled_errors=${r.unhandledErrors}`;
}

export function saveReport(r: SoakResult, text: string): string {
  const f = join(r.dir, 'report.txt');
  writeFileSync(f, text);
  return f;
}
