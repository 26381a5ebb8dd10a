import type { ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { Lan } from '../../node-service/src/demo/lan.ts';

const REPO = resolve(import.meta.dirname, '../..');

/**
 * Starts `vigil daemon` inside a host's namespace of a test LAN, keeping the last `keep` lines of its
 * output in `lines` (shared across restarts of the same node, so a test can dump them on failure).
 */
export function spawnDaemon(lan: Lan, node: string, configFile: string, lines: string[], keep: number): ChildProcess {
  const child = lan.spawn(node, [process.execPath, join(REPO, 'bin/vigil.mjs'), 'daemon', '--config', configFile, '--node', node], { cwd: REPO });
  const collect = (b: Buffer) => {
    lines.push(...b.toString().split('\n').filter(Boolean));
    if (lines.length > keep) lines.splice(0, lines.length - keep);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return child;
}
