/** Polls until every named node reports the wanted state; the error names what was last seen. */
export async function waitForStates(
  want: Readonly<Record<string, string>>,
  stateOf: (node: string) => Promise<string | undefined>,
  opts: { timeoutMs: number; everyMs: number; hint?: string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const got = await Promise.all(Object.keys(want).map(async (n) => [n, (await stateOf(n)) ?? 'DOWN'] as const));
    last = got.map(([n, s]) => `${n}=${s}`).join(' ');
    if (got.every(([n, s]) => want[n] === s)) return;
    await new Promise((r) => setTimeout(r, opts.everyMs));
  }
  throw new Error(`timed out waiting for ${JSON.stringify(want)}; last seen ${last}${opts.hint ? ` (${opts.hint})` : ''}`);
}
