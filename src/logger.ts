import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * JSON logs through pino. Redaction is belt and braces: request bodies are never
 * logged, and these paths are censored wherever they appear.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.currentPassword',
  '*.newPassword',
  '*.token',
  '*.secret',
  '*.totp',
  '*.code',
  '*.recoveryCode',
  '*.mfaToken',
  '*.changeToken',
  '*.csrfToken',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: {
        req(request: { id?: string; method?: string; url?: string; ip?: string }) {
          // No query string: it is where careless clients put secrets.
          return { id: request.id, method: request.method, path: request.url?.split('?')[0], ip: request.ip };
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
