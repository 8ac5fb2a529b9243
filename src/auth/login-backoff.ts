import type { Clock } from '../clock.js';
import { hmacSha256 } from '../crypto/hash.js';
import { KeyVersions } from '../crypto/hmac-key-versions.js';
import type { Keyring } from '../crypto/keyring.js';
import { RampartError } from '../errors.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { Metrics } from '../metrics/metrics.js';
import type { PiiService } from '../pii/pii-service.js';
import { addressSubject } from '../ratelimit/rate-limits.js';
import type { LoginThrottleRepository, LoginThrottleRow } from '../store/repositories/login-throttle.js';
import type { LoginAttemptGuard } from './flows/login.js';
import type { RequestMeta } from './flows/request-meta.js';

export const LOGIN_THROTTLE_KEY_PURPOSE = 'login-throttle';
/** A streak of failures ends when none follows for this long. */
export const FAILURE_STREAK_MS = 24 * 3_600_000;
/** An address the account logged in from stays "known" (exempt from the account-wide back-off) this long. */
export const KNOWN_ADDRESS_MS = 90 * 86_400_000;
/**
 * A success from a pair that had nothing to reset rewrites its last success at most
 * this often: the known-address window then ends up to this much earlier (stricter),
 * and a repeated login from a known address writes nothing.
 */
export const SUCCESS_RESOLUTION_MS = 3_600_000;

/** What a login attempt in flight has computed and read (see LoginBackoff.#attempts). */
interface Attempt {
  email: string;
  keys: Promise<{ account: string; pair: string }>;
  /** The pair's row as `beforeAttempt` read it: null when it had none, undefined when it did not run. */
  pairRow?: LoginThrottleRow | null;
}

export interface LoginBackoffOptions {
  /** Failures of one account from one address before that pair waits. */
  pairThreshold: number;
  /** Failures of one account from all addresses before unknown addresses wait. */
  accountThreshold: number;
  maxDelaySeconds: number;
}

/**
 * Per-account brute-force defence (ASVS V6.3.1), counted twice:
 *  - per account + address: after `pairThreshold` consecutive failures that pair
 *    waits 1 s, then 2, 4, 8 … up to `maxDelaySeconds`; a success from that
 *    address resets it (and only it);
 *  - per account, from every address together: after `accountThreshold`
 *    failures every address the owner has NOT logged in from before waits the
 *    same way, and an alert goes out. Guessing spread over many addresses hits
 *    this limit, while the owner's known addresses keep working: an attacker
 *    cannot lock the owner out.
 * While waiting, the password is not even checked (a right password is refused
 * too), so the back-off also caps argon2 work. Unknown emails count exactly like
 * real accounts (same writes, same answers): back-off reveals no account.
 * Counters live in the main store, shared by every instance, on the injected clock.
 */
export class LoginBackoff implements LoginAttemptGuard {
  /**
   * The attempt in flight, by its request: a login asks before and after the password
   * check, and the keys (three HMACs) are the same; the pair's row read before tells
   * the success whether there is anything to reset. Held by the request's RequestMeta,
   * so nothing outlives the request.
   */
  readonly #attempts = new WeakMap<RequestMeta, Attempt>();
  /** The counter keys' HMAC key versions: counters are named under the newest (`rampart keys rotate-hmac login-throttle`). */
  readonly #keys: KeyVersions;

  constructor(
    private readonly repo: LoginThrottleRepository,
    private readonly pii: PiiService,
    keyring: Keyring,
    private readonly events: SecurityEvents,
    private readonly metrics: Metrics,
    private readonly clock: Clock,
    private readonly options: LoginBackoffOptions,
  ) {
    this.#keys = new KeyVersions(keyring, LOGIN_THROTTLE_KEY_PURPOSE);
  }

  async init(): Promise<void> {
    await this.#keys.all();
  }

  async beforeAttempt(email: string, meta: RequestMeta): Promise<void> {
    const attempt = this.#attempt(email, meta);
    const keys = await attempt.keys;
    const rows = await this.repo.find(keys.account, keys.pair);
    const pair = rows.find((row) => row.key === keys.pair);
    attempt.pairRow = pair ?? null;
    const account = rows.find((row) => row.key === keys.account);
    const now = this.clock.now();
    if (pair && pair.blocked_until > now) await this.#refuse(email, meta, 'address', pair.blocked_until - now);
    const known = pair?.succeeded_at != null && now - pair.succeeded_at < KNOWN_ADDRESS_MS;
    if (account && account.blocked_until > now && !known) await this.#refuse(email, meta, 'account', account.blocked_until - now);
  }

  async failed(email: string, userId: string | null, meta: RequestMeta): Promise<void> {
    const keys = await this.#attempt(email, meta).keys;
    const now = this.clock.now();
    const [pairFailures, accountFailures] = await Promise.all([
      this.repo.addFailure(keys.pair, now, now - FAILURE_STREAK_MS),
      this.repo.addFailure(keys.account, now, now - FAILURE_STREAK_MS),
    ]);
    const { pairThreshold, accountThreshold } = this.options;
    if (pairFailures >= pairThreshold) await this.repo.block(keys.pair, now + this.#delayMs(pairFailures - pairThreshold));
    if (accountFailures >= accountThreshold) await this.repo.block(keys.account, now + this.#delayMs(accountFailures - accountThreshold));
    if (accountFailures === accountThreshold && userId) {
      await this.events.record({
        action: 'alert.raised', actor: { type: 'system', id: null }, target: { type: 'user', id: userId },
        origin: meta, outcome: 'success',
        details: { rule: 'brute_force', failures: accountFailures, withinHours: FAILURE_STREAK_MS / 3_600_000 },
      });
    }
  }

  /**
   * Resets the pair's streak and marks the address known. When the pair had nothing
   * to reset as this attempt began (no failures, no block) and its success is recent,
   * the write is skipped: a failure that raced this attempt then stays counted, and the
   * address stays known from the earlier success; both only stricter.
   */
  async succeeded(email: string, _userId: string, meta: RequestMeta): Promise<void> {
    const attempt = this.#attempt(email, meta);
    const now = this.clock.now();
    const seen = attempt.pairRow;
    if (seen && seen.failures === 0 && seen.blocked_until === 0 && seen.succeeded_at !== null
      && seen.succeeded_at <= now && now - seen.succeeded_at < SUCCESS_RESOLUTION_MS) return;
    await this.repo.markSuccess((await attempt.keys).pair, now);
  }

  /** Deletes finished streaks; run now and then. */
  async sweep(): Promise<number> {
    const now = this.clock.now();
    return this.repo.sweep(now - FAILURE_STREAK_MS - this.options.maxDelaySeconds * 1000, now - KNOWN_ADDRESS_MS);
  }

  /** 1 s after the threshold, doubling with each further failure, capped. */
  #delayMs(beyondThreshold: number): number {
    return Math.min(this.options.maxDelaySeconds * 1000, 1000 * 2 ** Math.min(beyondThreshold, 30));
  }

  #attempt(email: string, meta: RequestMeta): Attempt {
    const known = this.#attempts.get(meta);
    if (known?.email === email) return known;
    const attempt: Attempt = { email, keys: this.#computeKeys(email, meta.ip) };
    this.#attempts.set(meta, attempt);
    return attempt;
  }

  async #computeKeys(email: string, ip: string): Promise<{ account: string; pair: string }> {
    const [{ key }, index] = await Promise.all([this.#keys.current(), this.pii.emailIndex(email)]);
    return {
      account: hmacSha256(key, `account:${index}`),
      pair: hmacSha256(key, `pair:${index}:${addressSubject(ip)}`),
    };
  }

  async #refuse(email: string, meta: RequestMeta, scope: 'address' | 'account', waitMs: number): Promise<never> {
    const retryAfterSeconds = Math.max(1, Math.ceil(waitMs / 1000));
    this.metrics.lockouts.inc({ scope });
    const userId = await this.pii.findUserIdByEmail(email);
    await this.events.record({
      action: 'login.throttled', actor: { type: 'anonymous', id: null }, target: userId ? { type: 'user', id: userId } : null,
      origin: meta, outcome: 'denied', details: { scope, retryAfterSeconds },
    });
    throw new RampartError('rate_limited', {
      headers: { 'retry-after': String(retryAfterSeconds) },
      publicDetail: `Too many failed logins; retry in ${retryAfterSeconds} s.`,
      detail: `login back-off (${scope})`,
    });
  }
}
