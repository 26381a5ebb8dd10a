import { expect } from 'vitest';
import type { FarmLan } from './farm-lan.ts';

/** One client request as the test agent reports it: who answered (null: nobody). */
export interface HttpResult { id: string; src?: string; node: string | null; err?: string; t0: number; t1: number }

/** request id → the nodes whose server saw it */
export async function served(f: FarmLan): Promise<Map<string, string[]>> {
  const m = new Map<string, string[]>();
  for (const n of f.nodes) {
    for (const id of await f.call<string[]>(n, 'served')) m.set(id, [...(m.get(id) ?? []), n]);
  }
  return m;
}

/** SYN-ACKs sent by every node since the agents started */
export async function synacks(f: FarmLan): Promise<number> {
  let sum = 0;
  for (const n of f.nodes) sum += await f.call<number>(n, 'synacks');
  return sum;
}

/** Every request got an answer, from exactly the one node that served it. */
export function expectEachAnsweredOnce(results: HttpResult[], seen: Map<string, string[]>): void {
  const failed = results.filter((r) => r.node === null);
  expect(failed.map((r) => `${r.id} ${r.err}`).slice(0, 5)).toEqual([]);
  const dup = results.filter((r) => (seen.get(r.id) ?? []).length !== 1 || seen.get(r.id)![0] !== r.node);
  expect(dup.map((r) => `${r.id}: answered by ${r.node}, served by ${seen.get(r.id)?.join('+') ?? 'nobody'}`).slice(0, 5)).toEqual([]);
}
