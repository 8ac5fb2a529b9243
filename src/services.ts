import { join } from 'node:path';
import type { Logger } from 'pino';
import { PasswordHasher } from './auth/password/hasher.js';
import { BcryptVerifier } from './auth/password/bcrypt-verifier.js';
import { BreachedPasswordChecker } from './auth/password/breached.js';
import { PasswordRules } from './auth/password/password-rules.js';
import { PasswordService } from './auth/password/password-service.js';
import { StrengthEstimator } from './auth/password/strength-estimator.js';
import { LoginService } from './auth/flows/login.js';
import { MfaLoginFlow, mfaLoginGate } from './auth/flows/mfa-login.js';
import { MfaService } from './auth/mfa/mfa-service.js';
import { MfaRequirementNotifier } from './auth/mfa/requirement-notifier.js';
import { PasswordChangeFlow } from './auth/flows/password-change.js';
import { PasswordExpiryFlow } from './auth/flows/password-expiry.js';
import { PasswordResetFlow } from './auth/flows/password-reset.js';
import { PasswordTokens } from './auth/flows/password-tokens.js';
import { SignupService } from './auth/flows/signup.js';
import { BackgroundTasks } from './background-tasks.js';
import { RampartError } from './errors.js';
import { type Clock, systemClock } from './clock.js';
import type { Config } from './config/load.js';
import type { KeyProvider } from './crypto/key-provider.js';
import { Keyring, keyringAad } from './crypto/keyring.js';
import { type WrappedKeyColumn, wrappedKeyColumn } from './store/repositories/wrapped-keys.js';
import { openMasterKeys } from './crypto/master-keys.js';
import { SecurityEvents } from './events/security-events.js';
import { AuditLog } from './audit/audit-log.js';
import { createMailer, type Mailer } from './mail/mailer.js';
import { BLIND_INDEX_PURPOSE, PiiService } from './pii/pii-service.js';
import { OrgService } from './orgs/org-service.js';
import { OrgPolicyResolver } from './orgs/policy-resolver.js';
import { deploymentMfaSince } from './policy/deployment-mfa.js';
import type { PolicyResolver } from './policy/effective-policy.js';
import { CSRF_KEY_PURPOSE, SessionService } from './sessions/session-service.js';
import { openStores, type Stores } from './store/db.js';
import { assertStoresMigrated, migrateStores } from './store/migrate.js';
import { ServerSettingRepository } from './store/repositories/server-settings.js';
import { OrgRepository } from './store/repositories/orgs.js';
import { MfaRepository } from './store/repositories/mfa.js';
import { HmacKeyRotation } from './crypto/hmac-key-rotation.js';
import { type AddressProof, EmailVerificationFlow, type VerifiedVia } from './auth/flows/email-verification.js';
import { PasswordHistoryRepository } from './store/repositories/password-history.js';
import { PasswordTokenRepository } from './store/repositories/password-tokens.js';
import { SessionRepository } from './store/repositories/sessions.js';
import { UserRepository } from './store/repositories/users.js';
import { StepUpService } from './auth/flows/step-up.js';
import { AccountService } from './users/account-service.js';
import { ApiTokenRepository } from './store/repositories/api-tokens.js';
import { ApiTokenService, type TokenOrgDirectory } from './tokens/api-token-service.js';
import { SigningKeyRepository } from './store/repositories/signing-keys.js';
import { signingKeyAad, SigningKeyService } from './tokens/signing-keys.js';
import { AccessTokenService } from './tokens/access-tokens.js';
import { CredentialRevocation } from './users/credential-revocation.js';
import { StaffRepository } from './store/repositories/staff.js';
import { StaffService } from './staff/staff-service.js';
import { parseStaffConflicts } from './staff/staff-roles.js';
import type { Redis } from 'ioredis';
import type { ChangeFanout } from './store/change-fanout.js';
import type { LoginBackoff } from './auth/login-backoff.js';
import type { Metrics } from './metrics/metrics.js';
import { installSecurityOperations } from './monitoring/install.js';
import type { RateLimits } from './ratelimit/rate-limits.js';
import type { Alerts } from './alerts/alerts.js';
import type { JobQueue } from './jobs/job-queue.js';
import type { WebhookService } from './webhooks/webhook-service.js';

/**
 * Every domain service, wired once. The HTTP layer and the CLI receive this and
 * never construct services themselves; tests build it with a manual clock.
 */
export interface Services {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly stores: Stores;
  readonly keys: KeyProvider;
  readonly keyring: Keyring;
  readonly piiKeyring: Keyring;
  readonly pii: PiiService;
  readonly hasher: PasswordHasher;
  readonly users: UserRepository;
  readonly sessions: SessionService;
  readonly events: SecurityEvents;
  /** The hash-chained audit log (a sink of `events`). */
  readonly audit: AuditLog;
  readonly mailer: Mailer;
  policies: PolicyResolver;
  /** The orgs a user belongs to, for GET /v1/session; the orgs feature supplies it (none exist before). */
  orgsOfUser: (userId: string) => Promise<Array<{ id: string; name: string; slug: string; role: string }>>;
  readonly login: LoginService;
  readonly signup: SignupService;
  readonly stepUp: StepUpService;
  /** Revokes every credential of a user; features register their credential kinds. */
  readonly revocation: CredentialRevocation;
  readonly accounts: AccountService;
  /** API tokens (issue 5). */
  readonly apiTokens: ApiTokenService;
  /** Organizations, memberships, invitations, org policy, IP allowlists and THE org permission check. */
  readonly orgs: OrgService;
  /** Access-JWT signing keys and the JWKS (issue 5). */
  readonly signingKeys: SigningKeyService;
  /** Every column holding keys wrapped by the master key (master key rotation walks them). */
  readonly wrappedKeys: WrappedKeyColumn[];
  /** Access JWTs: issue, verify (issue 5). */
  readonly accessTokens: AccessTokenService;
  /** Second factors: TOTP, WebAuthn, recovery codes, the MFA login step, org enforcement, staff reset. */
  readonly mfa: MfaService;
  /** Rotation and retirement of the HMAC purpose keys (`rampart keys rotate-hmac`, `retire-hmac`). */
  readonly hmacKeys: HmacKeyRotation;
  /** Staff separation of roles: grants, assumptions and THE staff permission check. */
  readonly staff: StaffService;
  /** The second step of a login (POST /v1/login/mfa). */
  readonly mfaLogin: MfaLoginFlow;
  /** Mails members who lack a factor when their org starts requiring one (a sink of `policy.updated`). */
  readonly mfaNotifier: MfaRequirementNotifier;
  /** Password policy, history and the one way a new password is stored (issue: password security). */
  readonly passwords: PasswordService;
  readonly passwordChange: PasswordChangeFlow;
  readonly passwordReset: PasswordResetFlow;
  /** Email verification: links on request, and the address proved by a reset or an invitation. */
  readonly emailVerification: EmailVerificationFlow;
  readonly passwordExpiry: PasswordExpiryFlow;
  readonly passwordTokens: PasswordTokens;
  /** Off-request-path work (mail); `close()` waits for it. */
  readonly background: BackgroundTasks;
  /** Prometheus metrics (issue 7), served on their own listener. */
  readonly metrics: Metrics;
  /** Shared Redis when REDIS_URL is set (rate-limit counters), else null. */
  readonly redis: Redis | null;
  /** Read-cache invalidation between instances that share a PostgreSQL store (REDIS_URL set), else null. */
  readonly changeFanout: ChangeFanout | null;
  /** Request rate limits per tier (issue 7). */
  readonly rateLimits: RateLimits;
  /** Per-account login back-off (issue 7), the login's attempt guard. */
  readonly loginBackoff: LoginBackoff;
  /** The durable after-commit job queue (issue 7): alert evaluation and mail, webhook deliveries. */
  readonly jobs: JobQueue;
  /** Monitoring rules over the event stream (issue 7). */
  readonly alerts: Alerts;
  /** Org webhooks (issue 7). */
  readonly webhooks: WebhookService;
  /** Origin users reach; set once the listening port is known. */
  publicUrl: string;
  close(): Promise<void>;
}

export interface ServiceOverrides {
  clock?: Clock;
  keys?: KeyProvider;
  /** Skip migrations (the CLI's `migrate` runs them itself). */
  migrate?: boolean;
  /**
   * Record (or, with the option off, forget) when MFA_REQUIRED_FOR_ALL took
   * effect: only the server does; other commands only read it.
   */
  recordDeploymentSettings?: boolean;
}

export async function createServices(config: Config, logger: Logger, overrides: ServiceOverrides = {}): Promise<Services> {
  const clock = overrides.clock ?? systemClock;
  const keys = overrides.keys ?? await openMasterKeys(config, {
    create: true,
    onRefreshError: (error) => logger.warn({ reason: error.message }, 'MASTER_KEY_COMMAND failed; the keys it printed before still unwrap, and wrap until they are a refresh interval old'),
  });
  const stores = openStores(config);
  try {
    if (overrides.migrate !== false) await (config.migrateOnStart ? migrateStores(stores) : assertStoresMigrated(stores));
  } catch (error) {
    await stores.close();
    throw error;
  }
  const keyring = new Keyring(stores.main.db, keys);
  const piiKeyring = new Keyring(stores.pii.db, keys);
  const pii = new PiiService(stores.pii, keys, piiKeyring, clock);
  const hasher = new PasswordHasher({
    parameters: { memoryKiB: config.argon2MemoryKiB, iterations: config.argon2Iterations, parallelism: 1 },
    concurrency: config.passwordHashConcurrency,
    queueLimit: config.passwordHashQueue,
  });
  // Imported bcrypt hashes verify (never past 72 bytes) and are re-hashed with argon2id at the next login.
  hasher.registerForeignVerifier(new BcryptVerifier());
  const users = new UserRepository(stores.main.db, stores.main.changes, () => clock.now(), stores.main.dialect === 'postgres');
  const events = new SecurityEvents(clock);
  const sessions = new SessionService(new SessionRepository(stores.main.db), pii, keyring, clock, stores.main.changes, stores.main.db, events);
  events.addSink({
    record(event) {
      // The log gets the event's shape, never personal data (actor ids only).
      logger.info({ event: { action: event.action, outcome: event.outcome, actor: event.actor, target: event.target, orgId: event.orgId } }, 'security event');
    },
  });
  // Every event is appended to the hash-chained audit log, inside the caller's transaction when given.
  const audit = new AuditLog(stores.main.db, keyring, clock);
  events.addSink(audit);
  const background = new BackgroundTasks(logger);
  // zxcvbn off the event loop, one at a time, cut off after 3 s (crafted inputs take far longer).
  const strength = new StrengthEstimator({ timeoutMs: 3000, queueLimit: 32 });
  strength.warm();
  const mailer = createMailer({
    from: config.mailFrom,
    smtpUrl: config.smtpUrl,
    insecureSmtpWithoutTls: config.insecureSmtpWithoutTls,
    smtpCaFile: config.smtpCaFile,
    outboxDir: join(config.dataDir, 'outbox'),
    clock,
  });
  const services: Services = {
    config,
    clock,
    logger,
    stores,
    keys,
    keyring,
    piiKeyring,
    pii,
    hasher,
    users,
    sessions,
    events,
    audit,
    mailer,
    policies: undefined as unknown as PolicyResolver,
    orgsOfUser: async () => [],
    orgs: undefined as unknown as OrgService,
    // Flows read `services.policies` late, so a feature may replace the resolver after wiring.
    login: undefined as unknown as LoginService,
    signup: undefined as unknown as SignupService,
    // Read late: `services.login` is wired below. The password is checked under the login's back-off.
    stepUp: new StepUpService(async (userId, password, meta) => {
      const user = await users.findById(userId);
      const profile = user ? await pii.getProfile(userId) : null;
      return user && profile ? services.login.verifyPasswordOf(user, profile.email, password, meta) : false;
    }, sessions, events, clock),
    revocation: undefined as unknown as CredentialRevocation,
    accounts: undefined as unknown as AccountService,
    apiTokens: undefined as unknown as ApiTokenService,
    signingKeys: undefined as unknown as SigningKeyService,
    wrappedKeys: [
      wrappedKeyColumn(stores.pii.db, { table: 'pii_users', keyColumn: 'user_id', column: 'wrapped_dek', aad: (row) => `dek:${String(row['user_id'])}` }),
      wrappedKeyColumn(stores.main.db, { table: 'keyring', keyColumn: 'purpose', extraColumns: ['version'], column: 'wrapped_key', aad: (row) => keyringAad(String(row['purpose']), Number(row['version'])) }),
      wrappedKeyColumn(stores.pii.db, { table: 'keyring', keyColumn: 'purpose', extraColumns: ['version'], column: 'wrapped_key', aad: (row) => keyringAad(String(row['purpose']), Number(row['version'])) }),
      wrappedKeyColumn(stores.main.db, { table: 'signing_keys', keyColumn: 'kid', column: 'private_key_wrapped', aad: (row) => signingKeyAad(String(row['kid'])) }),
    ],
    accessTokens: undefined as unknown as AccessTokenService,
    mfa: undefined as unknown as MfaService,
    hmacKeys: undefined as unknown as HmacKeyRotation,
    staff: undefined as unknown as StaffService,
    mfaLogin: undefined as unknown as MfaLoginFlow,
    mfaNotifier: undefined as unknown as MfaRequirementNotifier,
    passwords: undefined as unknown as PasswordService,
    passwordChange: undefined as unknown as PasswordChangeFlow,
    passwordReset: undefined as unknown as PasswordResetFlow,
    emailVerification: undefined as unknown as EmailVerificationFlow,
    passwordExpiry: undefined as unknown as PasswordExpiryFlow,
    passwordTokens: undefined as unknown as PasswordTokens,
    background,
    metrics: undefined as unknown as Metrics,
    redis: null,
    changeFanout: null,
    rateLimits: undefined as unknown as RateLimits,
    loginBackoff: undefined as unknown as LoginBackoff,
    jobs: undefined as unknown as JobQueue,
    alerts: undefined as unknown as Alerts,
    webhooks: undefined as unknown as WebhookService,
    publicUrl: config.publicUrl ?? `https://localhost:${config.port}`,
    async close() {
      await background.settled();
      await strength.close();
      mailer.close();
      await services.changeFanout?.close();
      services.redis?.disconnect();
      await stores.close();
    },
  };
  const policies: PolicyResolver = { forUser: (userId) => services.policies.forUser(userId) };
  const revocation = new CredentialRevocation(sessions);
  const apiTokens = new ApiTokenService(
    new ApiTokenRepository(stores.main.db, stores.main.dialect === 'postgres'), stores.main.db, keyring, pii, policies, events, clock,
    { allowEternalTokens: config.insecureAllowEternalApiTokens },
    // Read late: `services.orgs` is wired after this.
    (): TokenOrgDirectory => services.orgs,
    stores.main.changes,
  );
  revocation.add(apiTokens.revoker());
  const orgRepository = new OrgRepository(stores.main.db, stores.main.dialect === 'postgres', stores.main.changes, () => clock.now());
  const orgs = new OrgService(stores.main.db, orgRepository, pii, events, mailer, clock, {
    productName: config.productName,
    publicUrl: () => services.publicUrl,
    maxOrgsPerUser: config.maxOrgsPerUser,
    maxPendingInvitationsPerOrg: config.maxPendingInvitationsPerOrg,
  });
  // A membership that ends takes the tokens bound to that org with it (same transaction).
  orgs.onMembershipEnded((orgId, userId, trx, origin) => apiTokens.revokeForEndedMembership(orgId, userId, trx, origin).then(() => undefined));
  const signingKeys = new SigningKeyService(new SigningKeyRepository(stores.main.db), stores.main.db, keys, events, clock, {
    rotationIntervalMs: config.signingKeyRotationDays * 86_400_000,
    maxTokenLifetimeMs: config.accessTokenTtlSeconds * 1000,
  });
  const accessTokens = new AccessTokenService(signingKeys, sessions, apiTokens, clock, {
    ttlSeconds: config.accessTokenTtlSeconds,
    issuer: () => services.publicUrl,
    audience: () => config.accessTokenAudience ?? `${services.publicUrl}/v1`,
  });
  const breached = config.breachedPasswordApiUrl
    ? new BreachedPasswordChecker({ url: config.breachedPasswordApiUrl, timeoutMs: config.breachedPasswordTimeoutMs, logger })
    : null;
  const rules = new PasswordRules(policies, strength, breached);
  const history = new PasswordHistoryRepository(stores.main.db);
  const tokenRepo = new PasswordTokenRepository(stores.main.db);
  const passwordTokens = new PasswordTokens(tokenRepo, events, clock);
  const emailVerification = new EmailVerificationFlow(stores.main.db, users, pii, tokenRepo, passwordTokens, events, mailer, clock, {
    publicUrl: () => services.publicUrl,
    productName: config.productName,
  });
  const addressProof = (via: VerifiedVia): AddressProof => (userId, meta, trx) => emailVerification.proveAddress(userId, via, meta, trx);
  orgs.setAddressProof(addressProof('invitation'));
  const passwords = new PasswordService(users, history, tokenRepo, hasher, rules, revocation, events, mailer, background, config.productName, clock);
  const login = new LoginService(stores.main.db, users, pii, hasher, sessions, policies, events, clock);
  const passwordExpiry = new PasswordExpiryFlow(stores.main.db, users, pii, policies, tokenRepo, passwordTokens, passwords, login, events, clock);
  login.addGate(passwordExpiry.gate());
  const mfaRepository = new MfaRepository(stores.main.db);
  const mfa = new MfaService({
    db: stores.main.db,
    repo: mfaRepository,
    users,
    pii,
    keyring,
    sessions,
    revocation,
    events,
    policies,
    clock,
    productName: config.productName,
    publicUrl: () => services.publicUrl,
  });
  revocation.add(mfa.revoker());
  services.stepUp.registerVerifier('totp', (userId, code, meta) => mfa.verifyTOTPForStepUp(userId, code, meta));
  const mfaNotifier = new MfaRequirementNotifier({
    orgs: () => services.orgs,
    enrollmentDeadline: (userId) => mfa.enrollmentDeadline(userId),
    mailer,
    events,
    logger,
    productName: config.productName,
    publicUrl: () => services.publicUrl,
  });
  events.addSink(mfaNotifier);
  const accounts = new AccountService(stores.main.db, users, revocation, events, clock, pii, logger);
  // Deleting the last owner would leave an org nobody can administer: hand the role over first.
  accounts.addDeletionGuard(async (userId, trx) => {
    // Inside the deletion's transaction (on SQLite a query outside it would wait for it forever),
    // with the orgs' rows locked first: membership changes wait, and the lock order holds.
    await orgRepository.holdOrgsOfMember(userId, trx);
    for (const membership of await orgRepository.listMembershipsOfUser(userId, trx)) {
      if (membership.role === 'owner' && (await orgRepository.countOwners(membership.org_id, trx)) <= 1) {
        throw new RampartError('last_owner', { publicDetail: 'You are the last owner of an organization: hand the owner role to another member, or delete the organization, first.' });
      }
    }
  });
  // Warm the purpose keys before anything records an event or serves a request: the first request
  // does not race to create them, and a start-up write that is audited in its own transaction
  // (below) finds the audit key loaded (on SQLite a key lookup inside it would wait for the one connection).
  // Every purpose key exists before the first request (rotating ones are read through `current`).
  await Promise.all([keyring.current(CSRF_KEY_PURPOSE), apiTokens.keys.all(), mfa.recoveryCodeKeys.all(), piiKeyring.current(BLIND_INDEX_PURPOSE), audit.init(), hasher.prepareDummy()]);
  // MFA_REQUIRED_FOR_ALL: the instant it took effect is stored once; existing accounts' grace runs from there.
  const mfaSwitchedOnAt = await deploymentMfaSince(config, new ServerSettingRepository(stores.main.db), clock,
    overrides.recordDeploymentSettings === true ? { record: true, db: stores.main.db, events } : { record: false });
  if (mfaSwitchedOnAt !== null && overrides.recordDeploymentSettings === true) {
    logger.info({ since: new Date(mfaSwitchedOnAt).toISOString(), graceHours: config.mfaRequiredGraceHours }, 'MFA_REQUIRED_FOR_ALL: every account needs a second factor');
  }
  const deploymentMfa = mfaSwitchedOnAt === null ? null : {
    switchedOnAt: mfaSwitchedOnAt,
    createdAt: async (userId: string) => (await users.findById(userId))?.created_at ?? null,
    clock,
  };
  Object.assign(services, {
    apiTokens,
    orgs,
    // The strictest policy of the user's orgs over the server defaults (with MFA_REQUIRED_FOR_ALL, a second factor for everyone).
    policies: new OrgPolicyResolver(config, orgRepository, deploymentMfa),
    orgsOfUser: (userId: string) => orgs.orgsOfUser(userId),
    signingKeys,
    accessTokens,
    revocation,
    accounts,
    login,
    signup: new SignupService(stores.main.db, users, pii, hasher, sessions, rules, events, clock),
    passwords,
    passwordChange: new PasswordChangeFlow(stores.main.db, users, pii, login, sessions, passwords, events),
    passwordReset: new PasswordResetFlow(stores.main.db, users, pii, tokenRepo, passwordTokens, passwords, events, mailer, background, {
      publicUrl: () => services.publicUrl,
      productName: config.productName,
    }),
    passwordExpiry,
    passwordTokens,
    emailVerification,
    mfa,
    hmacKeys: new HmacKeyRotation({ db: stores.main.db, keyring, events, apiTokens: apiTokens.repository, mfa: mfaRepository, now: () => clock.now() }),
    // The second step re-checks the org IP allowlists: the mfaToken may travel to another address.
    mfaLogin: new MfaLoginFlow(mfa, login, passwordExpiry, [(user, meta) => orgs.assertLoginAllowed(user.id, meta)]),
    mfaNotifier,
    staff: new StaffService({
      db: stores.main.db, repo: new StaffRepository(stores.main.db, stores.main.dialect === 'postgres'), users, pii, sessions, accounts, events, clock,
      conflicts: parseStaffConflicts(config.staffConflictingRoles),
      resetMfa: (userId, actor, meta) => mfa.reset(userId, actor, meta),
    }),
  });
  // The IP allowlist comes first among login gates (order 10): a refused address gets no
  // password-change token and no MFA challenge.
  // The allowlists come with the login's one policy resolution (no second read of the memberships).
  services.passwordReset.setAddressProof(addressProof('password_reset'));
  services.login.addGate({ name: 'ip-allowlist', order: 10, check: async ({ user, meta, policy }) => (await orgs.assertLoginAllowedBy(user.id, (await policy()).orgNetworks, meta), null) });
  // Then the second factor (and org MFA enforcement), after password expiry (order 50):
  // an expired password is replaced first, and change-expired resumes into this gate.
  services.login.addGate(mfaLoginGate(mfa));
  Object.assign(services, await installSecurityOperations(services));
  return services;
}
