import type { Clock } from '../../clock.js';
import { sha256Hex } from '../../crypto/hash.js';
import { randomToken } from '../../crypto/random.js';
import { RampartError } from '../../errors.js';
import type { SecurityEvents } from '../../events/security-events.js';
import type { PasswordTokenPurpose, PasswordTokenRepository } from '../../store/repositories/password-tokens.js';
import type { RequestMeta } from './request-meta.js';

/** What a flow that mails a link needs to write it. */
export interface MailedLinkOptions {
  /** The origin users reach, read late: it is known only once the server listens. */
  publicUrl: () => string;
  productName: string;
}

/** How long one redemption may hold a token before another may try (a crash mid-redemption frees it). */
const CLAIM_HOLD_MS = 60_000;

/** A token held by one redemption: consume it in the write's transaction, or release it on the user's mistake. */
export interface ClaimedToken {
  readonly tokenHash: string;
  readonly claimId: string;
  readonly userId: string;
}

/**
 * Issues and redeems the single-use secrets of the password flows: 256 random
 * bits handed to the user once, only their SHA-256 stored (a stolen database
 * yields no usable link), looked up by that hash.
 */
export class PasswordTokens {
  constructor(
    private readonly repo: PasswordTokenRepository,
    private readonly events: SecurityEvents,
    private readonly clock: Clock,
  ) {}

  /** A new token; the caller inserts it (through `row`) in its own transaction. */
  issue(userId: string, purpose: PasswordTokenPurpose, ttlMs: number) {
    const token = randomToken(32);
    const now = this.clock.now();
    return {
      token,
      row: { token_hash: sha256Hex(token), user_id: userId, purpose, created_at: now, expires_at: now + ttlMs, claim_id: null, claim_expires_at: null },
    };
  }

  /**
   * Holds a live token for this redemption. Of parallel redemptions of one
   * token exactly one gets it; the others, like an unknown, expired, used or
   * voided token, get `invalid_token` at once.
   */
  async claim(token: string, purpose: PasswordTokenPurpose, meta: RequestMeta): Promise<ClaimedToken> {
    const tokenHash = sha256Hex(token);
    const claimId = randomToken(16);
    const userId = await this.repo.claim(tokenHash, purpose, claimId, this.clock.now(), CLAIM_HOLD_MS);
    if (!userId) {
      await this.events.record({
        action: purpose === 'verify_email' ? 'email.verification_failed' : 'password.reset_failed', actor: { type: 'anonymous', id: null }, origin: meta,
        outcome: 'failure', details: { purpose },
      });
      throw new RampartError('invalid_token');
    }
    return { tokenHash, claimId, userId };
  }

  async release(claimed: ClaimedToken): Promise<void> {
    await this.repo.release(claimed.tokenHash, claimed.claimId);
  }

  /** Deletes expired tokens (they are refused anyway; this keeps the table small). */
  async sweepExpired(): Promise<number> {
    return this.repo.deleteExpired(this.clock.now());
  }
}
