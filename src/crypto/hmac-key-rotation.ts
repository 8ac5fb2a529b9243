import type { Kysely } from 'kysely';
import type { SecurityEvents } from '../events/security-events.js';
import type { ApiTokenRepository } from '../store/repositories/api-tokens.js';
import type { MfaRepository } from '../store/repositories/mfa.js';
import type { MainDB } from '../store/schema.js';
import { KEY_RETIRE_AFTER_MS, storedHmacVersion } from './hmac-key-versions.js';
import type { Keyring } from './keyring.js';

/**
 * The HMAC purpose keys of the main store that rotate through `rampart keys rotate-hmac`:
 * two that keep verifiers (API tokens, recovery codes: stored values stay checkable under
 * their version until it is retired) and two that only name counters (rate limits, login
 * back-off: counters start afresh under a new version).
 */
export const ROTATING_HMAC_PURPOSES = ['api-token', 'recovery-code', 'rate-limit', 'login-throttle'] as const;
export type RotatingHmacPurpose = (typeof ROTATING_HMAC_PURPOSES)[number];


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
   * is younger than `KEY_RETIRE_AFTER_MS`, and while live API tokens or unused recovery codes
   * are under an older version — unless `revokeRemaining`, which revokes those tokens and deletes
   * those codes (each owner's event says why) together with the keys, or not at all.
   */
  async retire(purpose: RotatingHmacPurpose, options: { revokeRemaining: boolean }): Promise<HmacRetirement> {
    return this.d.db.transaction().execute(async (trx) => {
      await this.d.keyring.current(purpose, trx);
      const versions = await this.d.keyring.versionsOf(purpose, trx);
      const current = versions[0]!;
      if (versions.length === 1) return { outcome: 'nothing_to_retire', version: current.version };
      const settlesAt = current.createdAt + KEY_RETIRE_AFTER_MS;
      // Keyring rows are stamped with the system clock (`Keyring.rotate`).
      if (Date.now() < settlesAt) return { outcome: 'too_recent', version: current.version, settlesAt };
      const now = this.d.now();
      // By the version each stored value names, below the current one as read here: a rotation
      // committed meanwhile adds a newer version, whose values this retirement leaves alone.
      const older = (stored: string) => storedHmacVersion(stored) < current.version;
      const tokens = purpose === 'api-token' ? (await this.d.apiTokens.listLive(now, trx)).filter((token) => older(token.token_hash)) : [];
      const codes = purpose === 'recovery-code' ? (await this.d.mfa.listUnusedRecoveryCodes(trx)).filter((code) => older(code.code_hash)) : [];
      const holders = new Map<string, number>();
      for (const code of codes) holders.set(code.user_id, (holders.get(code.user_id) ?? 0) + 1);
      if ((tokens.length > 0 || codes.length > 0) && !options.revokeRemaining) {
        return { outcome: 'held', version: current.version, tokens: tokens.length, recoveryCodeHolders: holders.size, recoveryCodes: codes.length };
      }
      // Every row first, in as few statements as the drivers allow, then the events: the audit
      // chain's head is taken last (ARCHITECTURE.md "Lock order").
      const revoked = new Set<string>();
      for (const chunk of chunks(tokens.map((token) => token.id))) {
        for (const id of await this.d.apiTokens.revokeByIds(chunk, now, 'key_retired', trx)) revoked.add(id);
      }
      let revokedRecoveryCodes = 0;
      for (const chunk of chunks(codes.map((code) => code.id))) revokedRecoveryCodes += await this.d.mfa.deleteUnusedRecoveryCodesByIds(chunk, trx);
      for (const token of tokens) {
        if (!revoked.has(token.id)) continue;
        await this.d.events.record({
          action: 'api_token.revoked', orgId: token.org_id, actor: SYSTEM, target: { type: 'api_token', id: token.id },
          origin: NO_ORIGIN, outcome: 'success', details: { reason: 'key_retired', userId: token.user_id },
        }, trx);
      }
      for (const [userId, count] of holders) {
        await this.d.events.record({
          action: 'recovery_codes.revoked', actor: SYSTEM, target: { type: 'user', id: userId },
          origin: NO_ORIGIN, outcome: 'success', details: { reason: 'key_retired', count },
        }, trx);
      }
      const revokedTokens = revoked.size;
      const retired = versions.slice(1).map((held) => held.version).sort((a, b) => a - b);
      await this.d.keyring.deleteVersionsBelow(purpose, current.version, trx);
      await this.d.events.record({
        action: 'hmac_key.retired', actor: SYSTEM, target: { type: 'hmac_key', id: purpose },
        origin: NO_ORIGIN, outcome: 'success',
        details: { purpose, versions: retired, current: current.version, revokedTokens, revokedRecoveryCodes },
      }, trx);
      return { outcome: 'retired', version: current.version, retired, revokedTokens, recoveryCodeHolders: holders.size, revokedRecoveryCodes };
    });
  }
}

/** Ids in groups small enough for one statement's parameters on SQLite and PostgreSQL. */
function chunks(ids: readonly string[], size = 500): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += size) out.push(ids.slice(i, i + size));
  return out;
}
