import type { LogRecord } from '../daemon/event-log.ts';
import type { ModuleStatus } from '../daemon/module-runner.ts';

/** A small aligned table: columns as wide as their widest cell. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n');
}

function resyncCell(s: ModuleStatus): string {
  const r = s.resync as { bytesDone?: number; bytesTotal?: number; etaS?: number };
  if (r.bytesTotal === undefined || r.bytesTotal === 0) return '-';
  const pct = Math.floor((100 * (r.bytesDone ?? 0)) / r.bytesTotal);
  return `${pct}% eta ${Math.round(r.etaS ?? 0)}s`;
}

export function stateTable(statuses: readonly ModuleStatus[]): string {
  const rows = [['MODULE', 'NODE', 'MODE', 'STATE', 'READY', 'PEERS', 'RESYNC']];
  for (const s of statuses) {
    rows.push([
      s.module,
      s.node,
      s.mode,
      s.state === s.target ? s.state : `${s.state}->${s.target}`,
      s.ready ? 'yes' : 'no',
      s.peers.map((p) => `${p.node}=${p.state}`).join(',') || '-',
      resyncCell(s),
    ]);
  }
  const notes = statuses.filter((s) => s.arbiter).map((s) => `${s.module} on ${s.node}: ${arbiterNote(s.arbiter!)}`);
  return [table(rows), ...notes].join('\n');
}

/** One line on the arbiter lease (issue 16): who may serve, and why a node may not. */
function arbiterNote(a: NonNullable<ModuleStatus['arbiter']>): string {
  switch (a.lease) {
    case 'held':
      return `arbiter ${a.type}: lease held (serves ${a.servesForMs ?? 0} ms more without a renewal)`;
    case 'taken':
      return `arbiter ${a.type}: lease held by ${a.holder ?? 'the peer'}`;
    case 'fenced':
      return `arbiter ${a.type}: FENCED: the lease was last held with data generation ${a.holderGen ?? '?'}, newer than ours; this node will not serve (vigil prim --force overrides)`;
    case 'unreachable':
      return `arbiter ${a.type}: UNREACHABLE for ${Math.round((a.unreachableForMs ?? 0) / 1000)} s (${a.reason ?? 'no answer'}): this node cannot serve; if the peer cannot reach it either, nobody serves`;
    case 'none':
      return `arbiter ${a.type}: no lease (not asked: this node is not becoming primary)`;
  }
}

export function contractJson(s: ModuleStatus): string {
  return JSON.stringify(s);
}

export function logLine(r: LogRecord): string {
  switch (r.kind) {
    case 'transition':
      return `${r.time}  ${r.from} -> ${r.to} ${r.phase}: ${r.reason}${r.detail ? ` (${r.detail})` : ''}`;
    case 'script': {
      const status = r.timedOut ? 'timed out' : r.ok ? 'ok' : `failed (${r.code ?? r.signal})`;
      const out = r.output.trim() ? `\n    ${r.output.trim().split('\n').slice(-5).join('\n    ')}` : '';
      return `${r.time}  script ${r.script} ${r.action}: ${status} in ${r.durationMs}ms${out}`;
    }
    case 'note':
      return `${r.time}  ${r.level}: ${r.msg}`;
  }
}
