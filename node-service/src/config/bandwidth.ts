import { z } from 'zod';

/** Size units of cluster.yaml: decimal (KB, MB, GB) and binary (KiB, MiB, GiB). */
const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, B: 1, KB: 1e3, KiB: 1024, MB: 1e6, MiB: 1 << 20, GB: 1e9, GiB: 1 << 30 };

const UNIT = Object.keys(SIZE_UNITS).filter((u) => u !== '').join('|');

/**
 * A byte count written with SIZE_UNITS ("16MiB", "1.5 GB", "4096"), followed by `suffix` (a regular
 * expression source, e.g. "/s"): bytes, rounded; undefined when the text is not one.
 */
export function parseBytes(text: string, suffix = ''): number | undefined {
  const m = new RegExp(`^\\s*([0-9]+(?:\\.[0-9]+)?)\\s*(${UNIT})?${suffix}\\s*$`).exec(text);
  return m ? Math.round(Number(m[1]) * SIZE_UNITS[m[2] ?? '']) : undefined;
}

/** below this a resync would crawl for hours; a typo ("50B/s") is more likely than the intent */
export const MIN_BANDWIDTH = 64 * 1024;

/**
 * Parses a resync bandwidth: "50MB/s", "20 MiB/s", "800KB/s" or a bare number of bytes per second into
 * bytes per second; "unlimited" (or 0) is null. undefined when the text is not a bandwidth.
 */
export function parseBandwidth(input: string | number): number | null | undefined {
  if (input === 0 || (typeof input === 'string' && /^\s*(unlimited|0)\s*$/i.test(input))) return null;
  const n = typeof input === 'number' ? Math.round(input) : parseBytes(input, '/s');
  return n !== undefined && Number.isSafeInteger(n) && n >= MIN_BANDWIDTH ? n : undefined;
}

export const BANDWIDTH_HINT = 'write e.g. 50MB/s, 20MiB/s or 800KB/s (at least 64KiB/s), or unlimited';

/** bytes per second as an operator writes them (MB/s, decimal); null is "unlimited" */
export function formatBandwidth(bps: number | null): string {
  if (bps === null) return 'unlimited';
  if (bps >= 1e6) return `${+(bps / 1e6).toFixed(2)}MB/s`;
  return `${+(bps / 1e3).toFixed(1)}KB/s`;
}

/** A zod field for replication.resync_bandwidth: bytes per second, or null for no limit. */
export const bandwidth = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const bps = parseBandwidth(v);
  if (bps === undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${v}" is not a bandwidth: ${BANDWIDTH_HINT}` });
    return z.NEVER;
  }
  return bps;
});
