import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * JSON logs through pino. What reaches the logger is chosen, not filtered:
 * request bodies are never logged, the request serializer keeps only method,
 * path (no query string), client address and id, and no header is logged. On
 * top of that, these top-level keys are censored wherever a caller passes them.
 * (Wildcard redaction paths cost 16 µs per line in `npm run bench` measurements,
 * ~15% of a cheap request; exact keys cost a third of that.)
 */
export const REDACT_PATHS = ['password', 'token', 'secret', 'authorization', 'cookie'];

/** How long a line may wait in the log buffer of a quiet server before it is written. */
export const LOG_FLUSH_INTERVAL_MS = 1000;

export interface BufferedDestination extends DestinationStream {
  /** Writes what is buffered, synchronously (before exit). */
  flushSync(): void;
}

/**
 * Asynchronous, buffered stdout for the server (pino's fast path): lines are
 * written in batches of about 15 KB, and at least every `LOG_FLUSH_INTERVAL_MS`
 * (else a quiet server would hold its last lines until it exits); `flushSync`
 * before exit. The buffer holds Buffers, not strings: in string mode sonic-boom
 * measures the whole pending string on every line, which cost about a
 * microsecond per request in `npm run bench:profile`; in buffer mode it keeps a
 * running length.
 */
export function asyncStdout(): BufferedDestination {
  const boom = pino.destination({ dest: 1, sync: false, minLength: 15 * 1024, contentMode: 'buffer' });
  let pending = false;
  setInterval(() => {
    if (!pending) return;
    pending = false;
    boom.flush((error) => {
      if (error) pending = true;
    });
  }, LOG_FLUSH_INTERVAL_MS).unref();
  return {
    write(line: string) {
      pending = true;
      return boom.write(Buffer.from(line) as unknown as string);
    },
    flushSync() {
      boom.flushSync();
    },
  };
}

/** The path of a request target, without its query string (where careless clients put secrets). */
export function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: {
        req(request: { id?: string; method?: string; url?: string; ip?: string }) {
          // No query string: it is where careless clients put secrets.
          return { id: request.id, method: request.method, path: request.url === undefined ? undefined : pathOf(request.url), ip: request.ip };
        },
        res(reply: { statusCode?: number }) {
          return { statusCode: reply.statusCode };
        },
        err: pino.stdSerializers.err,
      },
    },
    destination,
  );
}
