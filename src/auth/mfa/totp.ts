import { randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';

/**
 * TOTP (RFC 6238) through `otpauth`, with the parameters every authenticator app
 * understands: HMAC-SHA-1, 6 digits, 30-second steps.
 */
export const TOTP_ALGORITHM = 'SHA1';
export const TOTP_DIGITS = 6;
export const TOTP_PERIOD_SECONDS = 30;
/**
 * Steps of clock drift accepted either side of the server's step. RFC 6238 §5.2
 * recommends at most one backward step; ASVS V6.5.5 caps a code's life at 30 s
 * plus that drift.
 */
export const TOTP_WINDOW_STEPS = 1;
/** RFC 4226 §4 R6: the shared secret SHOULD be 160 bits. */
export const TOTP_SECRET_BYTES = 20;

/** A fresh seed from the CSPRNG (ASVS V6.5.3), base32 as authenticator apps expect. */
export function generateTOTPSecret(): string {
  // Copy into a fresh ArrayBuffer: a Buffer may be a view on a shared pool.
  const bytes = new Uint8Array(TOTP_SECRET_BYTES);
  bytes.set(randomBytes(TOTP_SECRET_BYTES));
  return new Secret({ buffer: bytes.buffer }).base32;
}

/** The `otpauth://totp/…` URI the console draws as a QR code. */
export function totpURI(secretBase32: string, issuer: string, label: string): string {
  return new TOTP({
    issuer,
    label,
    secret: Secret.fromBase32(secretBase32),
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
  }).toString();
}

/** The RFC 6238 time step (T) of an instant: floor(seconds since the epoch / 30). */
export function totpStep(epochMilliseconds: number): number {
  return TOTP.counter({ period: TOTP_PERIOD_SECONDS, timestamp: epochMilliseconds });
}

/**
 * The time step a code belongs to, if it is valid within ±1 step of the
 * server's trusted time (never the client's: ASVS V6.5.8), else null. `otpauth`
 * compares in constant time. Replay is the caller's business: it must refuse a
 * step it has already accepted (RFC 6238 §5.2).
 */
export function matchTOTPStep(secretBase32: string, code: string, epochMilliseconds: number, options: { algorithm?: string; digits?: number } = {}): number | null {
  const digits = options.digits ?? TOTP_DIGITS;
  if (code.length !== digits || !/^[0-9]+$/.test(code)) return null;
  const delta = TOTP.validate({
    token: code,
    secret: Secret.fromBase32(secretBase32),
    algorithm: options.algorithm ?? TOTP_ALGORITHM,
    digits,
    period: TOTP_PERIOD_SECONDS,
    timestamp: epochMilliseconds,
    window: TOTP_WINDOW_STEPS,
  });
  return delta === null ? null : totpStep(epochMilliseconds) + delta;
}

/** The code of a step (tests and the software authenticator in them). */
export function generateTOTP(secretBase32: string, epochMilliseconds: number, options: { algorithm?: string; digits?: number } = {}): string {
  return TOTP.generate({
    secret: Secret.fromBase32(secretBase32),
    algorithm: options.algorithm ?? TOTP_ALGORITHM,
    digits: options.digits ?? TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
    timestamp: epochMilliseconds,
  });
}
