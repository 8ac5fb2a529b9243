import type { Kysely } from 'kysely';
import type { SecurityEvents } from '../events/security-events.js';
import type { ApiTokenRepository } from '../store/repositories/api-tokens.js';
import type { MfaRepository } from '../store/repositories/mfa.js';
import type { MainDB } from '../store/schema.js';
import { KEY_VERSIONS_REFRESH_MS } from './hmac-key-versions.js';
import { type Keyring, withKeyVersion } from './keyring.js';

/**
 * The HMAC purpose keys of the main store that rotate through `rampart keys rotate-hmac`:
 * two that keep verifiers (API tokens, recovery codes: stored values stay checkable under
 * their version until it is retired) and two that only name counters (rate limits, login
 * back-off: counters start afresh under a new version).
 */
export const ROTATING_HMAC_PURPOSES = ['api-token', 'recovery-code', 'rate-limit', 'login-throttle'] as const;
export type RotatingHmacPurpose = (typeof ROTATING_HMAC_PURPOSES)[number];

/** A retirement waits this long after a rotation: every running server has read the new version by then. */
export const HMAC_RETIRE_AFTER_MS = 2 * KEY_VERSIONS_REFRESH_MS;

export type HmacRetirement =
  | { outcome: 'nothing_to_retire'; version: number }
  | { outcome: 'too_recent'; version: number; settlesAt: number }
  /** Live tokens or unused recovery codes are still under an older version (nothing was changed). */
  | { outcome: 'held'; version: number; tokens: number; recoveryCodeHolders: number; recoveryCodes: number }
  | { outcome: 'retired'; version: number; retired: number[]; revokedTokens: number; recoveryCodeHolders: number; revokedRecoveryCodes: number };

export interface HmacKeyRotationDeps {
  db: Kysely<MainDB>;
  keyring: Keyring;
  events: SecurityEvents;
  apiTokens: ApiTokenRepository;
  mfa: MfaRepository;
  now: () => number;
}

const SYSTEM = { type: 'system', id: null } as const;
const NO_ORIGIN = { ip: null, userAgent: null };

/**
 * Rotation and retirement of the HMAC purpose keys (ASVS V11.2.2). A rotation adds a version
 * that running servers take within a minute; new tokens and codes are computed under it, older
 * ones stay valid under theirs. A retirement destroys the older versions once no live token
 * and no unused recovery code needs them — or, asked explicitly after a leak, revokes those
 * that still do in the same transaction.
 */
export class HmacKeyRotation {
  constructor(private readonly d: HmacKeyRotationDeps) {}

  /** Adds a version of `purpose` with the event that records it, in one transaction; returns its number. */
  async rotate(purpose: RotatingHmacPurpose): Promise<number> {
    return this.d.db.transaction().execute(async (trx) => {
      await this.d.keyring.current(purpose, trx); // a first rotation makes version 2: version 1 is what is in use
      const version = await this.d.keyring.rotate(purpose, trx);
      await this.d.events.record({
        action: 'hmac_key.rotated', actor: SYSTEM, target: { type: 'hmac_key', id: purpose },
        origin: NO_ORIGIN, outcome: 'success', details: { purpose, version },
      }, trx);
      return version;
    });
  }

  /**
   * Deletes the versions of `purpose` older than the current one. Refused while the current one
   * is younger than `HMAC_RETIRE_AFTER_MS`, and while live API tokens or unused recovery codes
   * are under an older version — unless `revokeRemaining`, which revokes those tokens and deletes
   * those codes (each owner's event says why) together with the keys, or not at all.
   */
  async retire(purpose: RotatingHmacPurpose, options: { revokeRemaining: boolean }): Promise<HmacRetirement> {
    return this.d.db.transaction().execute(async (trx) => {
      await this.d.keyring.current(purpose, trx);
      const versions = await this.d.keyring.versionsOf(purpose, trx);
      const current = versions[0]!;
      if (versions.length === 1) return { outcome: 'nothing_to_retire', version: current.version };
      const settlesAt = current.createdAt + HMAC_RETIRE_AFTER_MS;
      // Keyring rows are stamped with the system clock (`Keyring.rotate`).
      if (Date.now() < settlesAt) return { outcome: 'too_recent', version: current.version, settlesAt };
      const prefix = withKeyVersion(current.version, '');
      const now = this.d.now();
      const tokens = purpose === 'api-token' ? await this.d.apiTokens.listLiveNotUnder(prefix, now, trx) : [];
      const codes = purpose === 'recovery-code' ? await this.d.mfa.unusedRecoveryCodesNotUnder(prefix, trx) : [];
      const recoveryCodes = codes.reduce((sum, holder) => sum + holder.count, 0);
      if ((tokens.length > 0 || codes.length > 0) && !options.revokeRemaining) {
        return { outcome: 'held', version: current.version, tokens: tokens.length, recoveryCodeHolders: codes.length, recoveryCodes };
      }
      let revokedTokens = 0;
      for (const token of tokens) {
        if (!(await this.d.apiTokens.revoke(token.user_id, token.id, now, 'key_retired', trx))) continue;
        revokedTokens++;
        await this.d.events.record({
          action: 'api_token.revoked', orgId: token.org_id, actor: SYSTEM, target: { type: 'api_token', id: token.id },
          origin: NO_ORIGIN, outcome: 'success', details: { reason: 'key_retired', userId: token.user_id },
        }, trx);
      }
      let revokedRecoveryCodes = 0;
      for (const holder of codes) {
        const deleted = await this.d.mfa.deleteUnusedRecoveryCodesNotUnder(holder.userId, prefix, trx);
        revokedRecoveryCodes += deleted;
        await this.d.events.record({
          action: 'recovery_codes.revoked', actor: SYSTEM, target: { type: 'user', id: holder.userId },
          origin: NO_ORIGIN, outcome: 'success', details: { reason: 'key_retired', count: deleted },
        }, trx);
      }
      const retired = versions.slice(1).map((held) => held.version).sort((a, b) => a - b);
      await this.d.keyring.deleteVersionsBelow(purpose, current.version, trx);
      await this.d.events.record({
        action: 'hmac_key.retired', actor: SYSTEM, target: { type: 'hmac_key', id: purpose },
        origin: NO_ORIGIN, outcome: 'success',
        details: { purpose, versions: retired, current: current.version, revokedTokens, revokedRecoveryCodes },
      }, trx);
      return { outcome: 'retired', version: current.version, retired, revokedTokens, recoveryCodeHolders: codes.length, revokedRecoveryCodes };
    });
  }
}
