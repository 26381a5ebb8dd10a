import { destination, pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines on stdout for systemd/journald. Keys that could carry secrets are redacted even if a
 * caller passes a whole config or request object by mistake.
 */
export function createLogger(opts: { level?: string; node?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.VIGIL_LOG_LEVEL ?? 'info',
      base: opts.node ? { node: opts.node } : undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['secret', '*.secret', 'token', '*.token', 'authorization', '*.authorization', 'key', '*.key'], censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    (opts.destination as DestinationStream | undefined) ?? destination({ fd: 1, sync: false }),
  );
}

/** A logger that discards everything (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
