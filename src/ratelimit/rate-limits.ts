import ipaddr from 'ipaddr.js';
import type { Redis } from 'ioredis';
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { hmacSha256 } from '../crypto/hash.js';
import { KeyVersions } from '../crypto/hmac-key-versions.js';
import type { Keyring } from '../crypto/keyring.js';
import { BoundedMemo } from '../memo.js';

/**
 * The tiers (API.md "Rate limits"):
 *  - anon:    per client address, every request without a valid credential;
 *  - auth:    per session or API token;
 *  - account: credential routes, per account (blind index of the email, or the user);
 *  - badauth: per client address, presented credentials that failed (token guessing);
 *  - taken:   per client address and hour, signups answered `email_taken` (the contract's
 *             409 tells whether an address has an account: this caps how many addresses one
 *             client can test that way).
 */
export type RateLimitTier = 'anon' | 'auth' | 'account' | 'badauth' | 'taken';

/** The tiers counted per minute (`taken` is counted per hour). */
export type PerMinuteTier = Exclude<RateLimitTier, 'taken'>;

export interface RateLimitDecision {
  tier: RateLimitTier;
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window resets. */
  resetSeconds: number;
  /** The window's length in seconds. */
  windowSeconds: number;
}

/** The counter store (Redis) did not answer: the caller decides between failing open and closed. */
export class RateLimitStoreUnavailable extends Error {
  constructor(readonly tier: RateLimitTier, cause: unknown) {
    super(`rate-limit store unavailable (${tier})`, { cause });
    this.name = 'RateLimitStoreUnavailable';
  }
}

export interface RateLimitsOptions {
  perMinute: Record<PerMinuteTier, number>;
  /** Signups answered `email_taken` per client address per hour (the `taken` tier); 10 when absent. */
  signupTakenPerHour?: number;
  /** Shared counters (every instance sees the same) when set; in-memory per process otherwise. */
  redis: Redis | null;
  keyPrefix: string;
  keyring: Keyring;
  /** Password-reset mails per account per hour (`takeResetMail`); 5 when absent. */
  resetMailsPerHour?: number;
  /** Email-verification mails per account per hour (`takeVerificationMail`); 5 when absent. */
  verificationMailsPerHour?: number;
  /** How often the counter key's versions are re-read (tests); a minute when absent. */
  keyRefreshMs?: number;
}

const WINDOW_SECONDS = 60;
const TAKEN_WINDOW_SECONDS = 3600;
export const RATE_LIMIT_KEY_PURPOSE = 'rate-limit';

/**
 * Fixed-window counters from rate-limiter-flexible, in memory or in Redis. Keys
 * are HMACs of what they count (an address, an account's blind index, a
 * session id) under a keyring key shared by every instance: no address or id
 * sits in Redis in clear, and a client cannot craft a key (ASVS V1.3.9).
 */
export class RateLimits {
  readonly #limiters: Record<RateLimitTier, RateLimiterAbstract>;
  readonly #resetMails: RateLimiterAbstract;
  readonly #verificationMails: RateLimiterAbstract;
  readonly #limits: Record<RateLimitTier, { points: number; windowSeconds: number }>;
  /** The counter keys' HMAC key versions; counters are named under the newest held (`rampart keys rotate-hmac rate-limit`). */
  readonly #keys: KeyVersions;
  /**
   * tier:subject → its HMAC under `version`: the same callers come back many times a minute.
   * Not the account tier: its subjects are emails' blind indexes, and nothing derived from
   * an email may outlive its request (only credential routes count it, so it is rare).
   */
  #hashedMemo = { version: 0, memo: new BoundedMemo<string, string>(50_000) };

  constructor(private readonly options: RateLimitsOptions) {
    this.#keys = new KeyVersions(options.keyring, RATE_LIMIT_KEY_PURPOSE, { refreshMs: options.keyRefreshMs });
    const minute = (points: number) => ({ points, windowSeconds: WINDOW_SECONDS });
    this.#limits = {
      anon: minute(options.perMinute.anon), auth: minute(options.perMinute.auth), account: minute(options.perMinute.account), badauth: minute(options.perMinute.badauth),
      taken: { points: options.signupTakenPerHour ?? 10, windowSeconds: TAKEN_WINDOW_SECONDS },
    };
    const make = (name: string, points: number, duration: number): RateLimiterAbstract => {
      const common = { points, duration, keyPrefix: `${options.keyPrefix}rl:${name}` };
      return options.redis
        // rejectIfRedisNotReady: answer at once while Redis is down instead of queueing behind a reconnect.
        ? new RateLimiterRedis({ ...common, storeClient: options.redis, rejectIfRedisNotReady: true })
        : new RateLimiterMemory(common);
    };
    const tier = (name: RateLimitTier) => make(name, this.#limits[name].points, this.#limits[name].windowSeconds);
    this.#limiters = { anon: tier('anon'), auth: tier('auth'), account: tier('account'), badauth: tier('badauth'), taken: tier('taken') };
    this.#resetMails = make('resetmail', options.resetMailsPerHour ?? 5, 3600);
    this.#verificationMails = make('verifymail', options.verificationMailsPerHour ?? 5, 3600);
  }

  /**
   * Takes one password-reset mail from the account's hourly budget: false once it is
   * spent. Throws RateLimitStoreUnavailable when Redis does not answer (the caller
   * sends nothing then: a mail a stranger triggers is not worth failing open for).
   */
  async takeResetMail(userId: string): Promise<boolean> {
    return this.#takeMail(this.#resetMails, 'resetmail', userId);
  }

  /** Takes one email-verification mail from the account's hourly budget, as `takeResetMail`. */
  async takeVerificationMail(userId: string): Promise<boolean> {
    return this.#takeMail(this.#verificationMails, 'verifymail', userId);
  }

  async #takeMail(limiter: RateLimiterAbstract, kind: string, userId: string): Promise<boolean> {
    const key = (await this.#keys.current()).key;
    try {
      await limiter.consume(hmacSha256(key, `${kind}:${userId}`).slice(0, 22));
      return true;
    } catch (error) {
      if (error instanceof RateLimiterRes) return false;
      throw new RateLimitStoreUnavailable('account', error);
    }
  }

  get shared(): boolean {
    return this.options.redis !== null;
  }

  limitOf(tier: RateLimitTier): number {
    return this.#limits[tier].points;
  }

  async init(): Promise<void> {
    await this.#keys.all();
  }

  /** Counts one request; `allowed` is false once the tier's limit for this key is spent. */
  async consume(tier: RateLimitTier, subject: string): Promise<RateLimitDecision> {
    const key = this.#hashed(tier, subject);
    try {
      return this.#decision(tier, await this.#limiters[tier].consume(key), true);
    } catch (error) {
      if (error instanceof RateLimiterRes) return this.#decision(tier, error, false);
      throw new RateLimitStoreUnavailable(tier, error);
    }
  }

  /** Reads a counter without counting. */
  async peek(tier: RateLimitTier, subject: string): Promise<RateLimitDecision> {
    try {
      const res = await this.#limiters[tier].get(this.#hashed(tier, subject));
      const { points, windowSeconds } = this.#limits[tier];
      if (!res) return { tier, allowed: true, limit: points, remaining: points, resetSeconds: windowSeconds, windowSeconds };
      return this.#decision(tier, res, res.consumedPoints < points);
    } catch (error) {
      throw new RateLimitStoreUnavailable(tier, error);
    }
  }

  /**
   * Gives back one point counted by `consume` (a signup counted in the `taken` tier before
   * its answer was known, which did not answer `email_taken`). Best effort: a counter store
   * that does not answer keeps the point until its window ends.
   */
  async refund(tier: RateLimitTier, subject: string): Promise<void> {
    await this.#limiters[tier].reward(this.#hashed(tier, subject), 1).catch(() => undefined);
  }

  #decision(tier: RateLimitTier, res: RateLimiterRes, allowed: boolean): RateLimitDecision {
    const { points: limit, windowSeconds } = this.#limits[tier];
    return {
      tier,
      allowed,
      limit,
      remaining: Math.max(0, limit - res.consumedPoints),
      resetSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
      windowSeconds,
    };
  }

  /** Subject HMACs held in the memo (tests: no account subject among them). */
  get memoizedKeys(): number {
    return this.#hashedMemo.memo.size;
  }

  #hashed(tier: RateLimitTier, subject: string): string {
    // Synchronous on the hot path: a stale set of versions is re-read in the background, and
    // counters move to a new version (starting afresh) once this process holds it.
    const held = this.#keys.currentHeld();
    if (!held) throw new Error('RateLimits.init() was not awaited');
    const { key, version } = held;
    const input = `${tier}:${subject}`;
    if (tier === 'account') return hmacSha256(key, input).slice(0, 22);
    if (this.#hashedMemo.version !== version) this.#hashedMemo = { version, memo: new BoundedMemo<string, string>(50_000) };
    return this.#hashedMemo.memo.get(input, (value) => hmacSha256(key, value).slice(0, 22));
  }
}

/**
 * The subject of per-address limits: the IPv4 address, or the /64 of an IPv6
 * address (one subscriber usually holds a whole /64, so counting single IPv6
 * addresses would give an attacker 2^64 fresh budgets).
 */
export function addressSubject(ip: string): string {
  return subjectMemo.get(ip, parseAddressSubject);
}

/** Client address → its subject; parsing costs more than the counter it selects. */
const subjectMemo = new BoundedMemo<string, string>(10_000);

function parseAddressSubject(ip: string): string {
  if (!ipaddr.isValid(ip)) return `raw:${ip}`;
  let address = ipaddr.parse(ip);
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) address = (address as ipaddr.IPv6).toIPv4Address();
  if (address.kind() === 'ipv4') return `v4:${address.toString()}`;
  const parts = (address as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `v6:${parts.join(':')}::/64`;
}
