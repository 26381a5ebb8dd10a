/**
 * The daemon's one clock for decisions: monotonic milliseconds (never jumps with the wall clock). The
 * core receives it as `now` on every event; the edges that act on the core's deadlines (the lease's
 * serve-until) read the same clock.
 */
export const monotonic = (): number => Number(process.hrtime.bigint() / 1_000_000n);
