/** pino JSON logs to stdout; one child per component. PEM blobs and secrets are redacted. */
import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(level = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'fleetgate', pid: process.pid },
      redact: { paths: ['*.key', '*.sk', 'headers.signature', 'headers.accesskey'], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** A logger that drops everything; for tests and library use without output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
