import type { Transaction } from 'kysely';
import type { RequestMeta } from '../auth/flows/request-meta.js';
import type { Clock } from '../clock.js';
import { findUnderAnyVersion, KeyVersions, storedHmac } from '../crypto/hmac-key-versions.js';
import type { Keyring } from '../crypto/keyring.js';
import { randomBytes, randomId } from '../crypto/random.js';
import { RampartError } from '../errors.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { PiiService, Profile } from '../pii/pii-service.js';
import type { PolicyResolver } from '../policy/effective-policy.js';
import type { OrgPolicy } from '../policy/org-policy.js';
import { formatApiToken, hasValidApiTokenChecksum } from '../sdk/api-token-format.js';
import type { ChangeFeed, TableChange } from '../store/change-feed.js';
import { altersRows, ReadCache } from '../store/read-cache.js';
import type { ApiTokenRepository, ApiTokenRow, ApiTokenWithOwner } from '../store/repositories/api-tokens.js';
import type { MainDB } from '../store/schema.js';
import type { CredentialRevoker, RevocationReason } from '../users/credential-revocation.js';

/** API.md "API token scopes". A token holds a subset; a session holds them all. */
export const API_TOKEN_SCOPES = ['profile:read', 'org:read', 'org:admin', 'audit:read', 'introspect'] as const;
export type ApiTokenScope = (typeof API_TOKEN_SCOPES)[number];

/** Scopes that change an org: creating a token that holds one needs a recent sign-in or step-up (ASVS V7.5.3). */
export const ADMIN_SCOPES: ReadonlySet<string> = new Set(['org:admin']);

/** API.md: a token lives 90 days unless asked otherwise, never longer than the org policy allows. */
export const DEFAULT_TOKEN_LIFETIME_DAYS = 90;
/** Business limit (ASVS V2.1.3): live tokens per user. */
export const MAX_LIVE_TOKENS_PER_USER = 50;
/** The last-use record is written at most this often per token: a hot token must not write on every request. */
export const LAST_USED_THROTTLE_MS = 60_000;
/** Characters of the token kept in clear to recognise it in a list (`rpat_` + 4 of 43 random characters). */
const PREFIX_LENGTH = 9;
const DAY_MS = 86_400_000;
/** The keyring purpose of the tokens' HMAC key (`rampart keys rotate-hmac api-token`). */
export const API_TOKEN_KEY_PURPOSE = 'api-token';

/**
 * What the token feature needs of organizations (`services.orgs` provides it):
 * the request gate every org route passes (membership, else `not_found` like a
 * missing org; the org's IP allowlist, else `ip_not_allowed` and an
 * `ip.blocked` event) and the org policy. Without it no org exists, so an org
 * binding is refused as an unknown org.
 */
export interface TokenOrgDirectory {
  assertRequestAllowed(caller: { kind: 'session'; userId: string; scopes: null }, orgId: string, meta: RequestMeta): Promise<void>;
  getPolicy(orgId: string): Promise<OrgPolicy>;
  holdMembership(orgId: string, userId: string, trx: Transaction<MainDB>): Promise<boolean>;
}

export interface CreateTokenInput {
  userId: string;
  name: string;
  scopes: readonly string[];
  /** undefined: the default; null: no expiry (only with the insecure option, and no org policy in force). */
  expiresInDays?: number | null;
  orgId?: string | null;
}

export interface IssuedApiToken {
  /** The token itself. Returned once; only its HMAC is stored. */
  token: string;
  row: ApiTokenRow;
}

export interface ApiTokenServiceOptions {
  /** RAMPART_INSECURE_ALLOW_ETERNAL_API_TOKENS */
  allowEternalTokens: boolean;
}

/**
 * What can change a kept token: any write to `users` but a new account (the owner's
 * status), any to `api_tokens` but a new token and the last-use bookkeeping (after
 * which `authenticate` drops its own entry).
 */
export function changesApiToken(change: TableChange): boolean {
  return altersRows(change, 'users') || altersRows(change, 'api_tokens', ['last_used_at', 'last_used_ip_enc']);
}

/** Why a presented token was refused (for the event; the client only ever sees 401). */
export type TokenRejection = 'unknown' | 'revoked' | 'expired' | 'owner_inactive';

/**
 * API tokens treated like passwords: ≥ 256 random bits, stored only as
 * HMAC-SHA256 under a keyring key (a stolen database holds no usable token and
 * no offline-checkable hash without the master key), shown once, scoped,
 * expiring, revocable, with their last use recorded (the address encrypted
 * under the owner's data key).
 */
export class ApiTokenService {
  constructor(
    readonly repository: ApiTokenRepository,
    private readonly db: { transaction(): { execute<T>(fn: (trx: Transaction<MainDB>) => Promise<T>): Promise<T> } },
    keyring: Keyring,
    private readonly pii: PiiService,
    private readonly policies: PolicyResolver,
    private readonly events: SecurityEvents,
    private readonly clock: Clock,
    private readonly options: ApiTokenServiceOptions,
    private readonly orgs: () => TokenOrgDirectory | undefined,
    changes: ChangeFeed | null = null,
  ) {
    this.#live = changes && new ReadCache({ feed: changes, dependsOn: changesApiToken, now: () => this.clock.now() });
    this.keys = new KeyVersions(keyring, API_TOKEN_KEY_PURPOSE);
  }

  /** The versions of the HMAC key: new tokens take the newest, a presented one is looked up under each. */
  readonly keys: KeyVersions;

  /** Tokens read recently with their owner's status, by HMAC (see `authenticate`); null: every request reads. */
  readonly #live: ReadCache<string, ApiTokenWithOwner | undefined> | null;

  /**
   * The stored row for a presented token, read now under each key version held (newest first;
   * after a miss, versions new to this process too). While older versions are held, a token
   * under one costs a read per newer version first, and an unknown token one per version.
   */
  async #find(token: string): Promise<{ row: ApiTokenWithOwner | undefined; tokenHash: string }> {
    const { found, stored } = await findUnderAnyVersion(this.keys, token, (tokenHash) =>
      this.#live ? this.#live.load(tokenHash, () => this.repository.findByHash(tokenHash)) : this.repository.findByHash(tokenHash));
    return { row: found, tokenHash: stored };
  }

  async create(input: CreateTokenInput, meta: RequestMeta): Promise<IssuedApiToken> {
    const scopes = [...new Set(input.scopes)];
    if (scopes.length === 0 || scopes.some((scope) => !(API_TOKEN_SCOPES as readonly string[]).includes(scope))) {
      throw new RampartError('invalid_request', { publicDetail: `scopes must be a non-empty subset of ${API_TOKEN_SCOPES.join(', ')}.` });
    }
    const orgId = input.orgId ?? null;
    if (orgId !== null) {
      const orgs = this.orgs();
      if (!orgs) throw new RampartError('not_found');
      // Binding a token to an org is a request that touches the org: the same gate
      // as every org route. Tokens are made by their user's session (no token can
      // make one), so the caller is a session.
      await orgs.assertRequestAllowed({ kind: 'session', userId: input.userId, scopes: null }, orgId, meta);
    }
    const expiresAt = await this.#expiryFor(input.userId, orgId, input.expiresInDays);
    const token = formatApiToken(randomBytes(32));
    const now = this.clock.now();
    const row: ApiTokenRow = {
      id: randomId('tok'),
      // Read now, not as held: a rotation must not leave new tokens under the old key for a minute.
      token_hash: storedHmac((await this.keys.reread())[0]!, token),
      user_id: input.userId,
      org_id: orgId,
      name: input.name,
      scopes: scopes.join(' '),
      prefix: token.slice(0, PREFIX_LENGTH),
      created_at: now,
      expires_at: expiresAt,
      last_used_at: null,
      last_used_ip_enc: null,
      revoked_at: null,
      revoked_reason: null,
    };
    await this.db.transaction().execute(async (trx) => {
      if ((await this.repository.countLiveForUserHeld(input.userId, now, trx)) >= MAX_LIVE_TOKENS_PER_USER) {
        throw new RampartError('token_limit_reached', { publicDetail: `At most ${MAX_LIVE_TOKENS_PER_USER} live tokens per user; revoke one first.` });
      }
      await this.repository.insert(row, trx);
      // The member may have been removed since the org gate: a removal revokes bound tokens in its
      // own transaction, so this one must see it, or make it wait (and then revoke this token).
      if (orgId !== null && !(await this.orgs()!.holdMembership(orgId, input.userId, trx))) throw new RampartError('not_found');
      await this.events.record({
        action: 'api_token.created', orgId, actor: { type: 'user', id: input.userId }, target: { type: 'api_token', id: row.id },
        origin: meta, outcome: 'success',
        details: { scopes, expiresAt, orgId },
      }, trx);
    });
    return { token, row };
  }

  /**
   * The expiry of a new token: the requested (or default) lifetime, capped by
   * the user's effective policy (the strictest of their orgs) and by the bound
   * org's policy. No expiry only when the operator allowed it loudly and no org
   * policy applies.
   */
  async #expiryFor(userId: string, orgId: string | null, expiresInDays: number | null | undefined): Promise<number | null> {
    const policy = await this.policies.forUser(userId);
    let capDays = policy.tokens.maxLifetimeDays;
    let orgPolicyApplies = policy.orgIds.length > 0;
    if (orgId !== null) {
      // `create` passed the org gate: the caller is a member of an org that exists.
      capDays = Math.min(capDays, (await this.orgs()!.getPolicy(orgId)).tokens.maxLifetimeDays);
      orgPolicyApplies = true;
    }
    if (expiresInDays === null) {
      if (!this.options.allowEternalTokens) {
        throw new RampartError('invalid_request', { publicDetail: 'API tokens must expire; give expiresInDays.' });
      }
      if (orgPolicyApplies) {
        throw new RampartError('invalid_request', { publicDetail: `An organization policy limits tokens to ${capDays} days.` });
      }
      return null;
    }
    const days = Math.min(expiresInDays ?? DEFAULT_TOKEN_LIFETIME_DAYS, capDays);
    return this.clock.now() + days * DAY_MS;
  }

  /** Live and expired (not revoked) tokens of the user, with the last address decrypted. */
  async list(userId: string, profile: Pick<Profile, 'userId' | 'dataKey'>): Promise<Array<ApiTokenRow & { lastUsedIp: string | null }>> {
    const rows = await this.repository.listForUser(userId);
    return rows.map((row) => ({ ...row, lastUsedIp: this.pii.openForUser(profile, row.last_used_ip_enc, 'api-token-ip') }));
  }

  async revoke(userId: string, id: string, meta: RequestMeta): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const done = await this.repository.revoke(userId, id, this.clock.now(), 'user', trx);
      if (done) {
        await this.events.record({
          action: 'api_token.revoked', actor: { type: 'user', id: userId }, target: { type: 'api_token', id },
          origin: meta, outcome: 'success', details: { reason: 'user' },
        }, trx);
      }
      return done;
    });
  }

  /**
   * The live token row for a presented token, or null. A malformed token or a
   * bad checksum is refused before any lookup (`invalid_token_format`); an
   * unknown, revoked or expired one, or one whose owner is locked, gives null.
   */
  async authenticate(token: string, meta: RequestMeta): Promise<ApiTokenWithOwner | null> {
    if (!hasValidApiTokenChecksum(token)) {
      throw new RampartError('invalid_token_format', { publicDetail: 'This is not a valid API token (bad checksum).' });
    }
    const now = this.clock.now();
    // A kept token (under the newest key) is used only while it is live and its last use needs
    // no writing; anything else (a refusal and its event, the once-a-minute write) goes by the
    // row as stored now.
    if (this.#live) {
      for (const key of await this.keys.all()) {
        const kept = this.#live.peek(storedHmac(key, token));
        if (kept === undefined) continue;
        if (checkLive(kept, now) === null && kept.last_used_at !== null && now - kept.last_used_at < LAST_USED_THROTTLE_MS) return { ...kept };
        break;
      }
    }
    const { row, tokenHash } = await this.#find(token);
    const rejection = checkLive(row, now);
    if (rejection) {
      // A token that once existed (revoked, expired, locked owner) is a signal worth an event.
      // An unknown one is not: a valid checksum costs an attacker nothing, and an audit
      // write per made-up token would turn a flood into write amplification.
      if (row) {
        await this.events.record({
          action: 'api_token.rejected', actor: { type: 'user', id: row.user_id }, target: { type: 'api_token', id: row.id }, orgId: row.org_id,
          origin: meta, outcome: 'failure', details: { reason: rejection },
        });
      }
      return null;
    }
    if (await this.#recordUse(row!, now, meta)) {
      // The write is not announced as a change (see `changesApiToken`): the kept row is now old.
      this.#live?.delete(tokenHash);
    }
    return { ...row! };
  }

  /** The live token with this public id (an access JWT's `tid`), or null. */
  async findLive(id: string): Promise<ApiTokenWithOwner | null> {
    const row = await this.repository.findById(id);
    return checkLive(row, this.clock.now()) ? null : row!;
  }

  /** The live token for a presented token string, without recording a use (introspection). */
  async peek(token: string): Promise<ApiTokenWithOwner | null> {
    if (!hasValidApiTokenChecksum(token)) return null;
    const { row } = await this.#find(token);
    return checkLive(row, this.clock.now()) ? null : row!;
  }

  /**
   * Last use (time and address) written at most once a minute per token; the
   * event that goes with it (`api_token.used`) follows the same rhythm, so the
   * audit log shows each token's activity without a row per request.
   */
  /** Returns whether the last use was due (written here, or by another request just before). */
  async #recordUse(row: ApiTokenWithOwner, now: number, meta: RequestMeta): Promise<boolean> {
    if (row.last_used_at !== null && now - row.last_used_at < LAST_USED_THROTTLE_MS) return false;
    const profile = await this.pii.getProfile(row.user_id);
    const ipEnc = profile ? this.pii.sealForUser(profile, meta.ip, 'api-token-ip') : null;
    if (await this.repository.touch(row.id, now, ipEnc, LAST_USED_THROTTLE_MS)) {
      await this.events.record({
        action: 'api_token.used', orgId: row.org_id, actor: { type: 'token', id: row.id }, target: { type: 'user', id: row.user_id },
        origin: meta, outcome: 'success', details: {},
      });
    }
    return true;
  }

  /**
   * Revokes the user's tokens bound to an org whose membership just ended, inside
   * the transaction that ended it. Membership is checked at every use anyway; this
   * makes the end final, so taking the person back later does not revive a token
   * the org's admins saw go.
   */
  async revokeForEndedMembership(orgId: string, userId: string, transaction: Transaction<MainDB>, origin: RequestMeta): Promise<number> {
    const ids = await this.repository.revokeAllForUserInOrg(userId, orgId, this.clock.now(), 'membership_ended', transaction);
    for (const id of ids) {
      await this.events.record({
        action: 'api_token.revoked', orgId, actor: { type: 'system', id: null }, target: { type: 'api_token', id }, origin,
        outcome: 'success', details: { reason: 'membership_ended', userId },
      }, transaction);
    }
    return ids.length;
  }

  /** The credential revoker: tokens are separate credentials that survive a password change, not a lock or deletion. */
  revoker(): CredentialRevoker {
    return {
      name: 'api_tokens',
      revokeForUser: async (userId: string, reason: RevocationReason, transaction: Transaction<MainDB>) => {
        if (reason !== 'account_locked' && reason !== 'account_deleted') return 0;
        return this.repository.revokeAllForUser(userId, this.clock.now(), reason, transaction);
      },
    };
  }
}

function checkLive(row: ApiTokenWithOwner | undefined, now: number): TokenRejection | null {
  if (!row) return 'unknown';
  if (row.revoked_at !== null) return 'revoked';
  if (row.expires_at !== null && now >= row.expires_at) return 'expired';
  if (row.user_status !== 'active') return 'owner_inactive';
  return null;
}

export function scopesOf(row: Pick<ApiTokenRow, 'scopes'>): string[] {
  return row.scopes.split(' ').filter(Boolean);
}
