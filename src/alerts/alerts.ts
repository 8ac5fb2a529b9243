import type { AuditEvent } from '../audit/chain.js';
import type { AppendListener, AuditLog } from '../audit/audit-log.js';
import { type SecurityEventInput, type SecurityEvents } from '../events/security-events.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { Mailer } from '../mail/mailer.js';
import type { PiiService } from '../pii/pii-service.js';
import type { OrgPolicy } from '../policy/org-policy.js';
import type { KnownValues } from './known-values.js';
import { weakenedPolicyFields } from './policy-weakening.js';

export type AlertRule = 'new_ip_login' | 'new_device_login' | 'brute_force' | 'staff_role_assumed' | 'policy_weakened' | 'token_new_ip' | 'token_created';

/** Rules told to the user concerned (by mail; every alert is also in their security-events feed). */
const USER_RULES: ReadonlySet<string> = new Set(['new_ip_login', 'new_device_login', 'brute_force', 'token_new_ip', 'token_created', 'staff_role_assumed']);
/** Events the rules look at. */
const EVALUATED: ReadonlySet<string> = new Set(['user.created', 'login.succeeded', 'api_token.created', 'api_token.used', 'policy.updated', 'staff_role.assumed']);
const ADMIN_ROLES: ReadonlySet<string> = new Set(['owner', 'admin']);

/** The little the alerts need of organizations (services.orgs). */
export interface AlertOrgDirectory {
  membershipsOf(userId: string): Promise<Array<{ orgId: string; role: string }>>;
  listMembers(orgId: string): Promise<Array<{ userId: string; role: string }>>;
  getOrg(orgId: string): Promise<{ name: string } | null>;
}

export interface AlertsOptions {
  productName: string;
  publicUrl: () => string;
  orgs: () => AlertOrgDirectory;
}

const RETRY = { baseDelayMs: 15_000, maxDelayMs: 30 * 60_000, maxAttempts: 10 };

/**
 * Monitoring rules over the event stream (DESIGN.md "Monitoring"). The audit
 * append queues an `alert.evaluate` job in the same transaction as each event a
 * rule looks at, so rules run after the commit, off the request path, durably
 * and once. A rule that fires records `alert.raised` (the user's security feed,
 * the audit log, org webhooks subscribed to it), whose own append queues the
 * notification: mail to the user concerned and to the org's owners and admins.
 */
export class Alerts {
  constructor(
    private readonly audit: AuditLog,
    private readonly events: SecurityEvents,
    private readonly known: KnownValues,
    private readonly jobs: JobQueue,
    private readonly mailer: Mailer,
    private readonly pii: PiiService,
    private readonly options: AlertsOptions,
  ) {
    jobs.register('alert.evaluate', { retry: RETRY, ordered: true }, (payload) => this.evaluate(Number(payload['seq'])));
    jobs.register('alert.notify', { retry: RETRY, ordered: true }, (payload) => this.notify(Number(payload['seq'])));
    jobs.register('alert.mail', { retry: RETRY }, (payload) =>
      this.mail(Number(payload['seq']), String(payload['userId']), payload['audience'] === 'admin' ? 'admin' : 'user'));
  }

  /** Runs inside every audit append: queues the after-commit work. */
  listener(): AppendListener {
    return async (appended, trx) => {
      const jobs = appended.flatMap((event) => {
        if (event.action === 'alert.raised') return [{ kind: 'alert.notify', payload: { seq: event.seq } }];
        if (EVALUATED.has(event.action)) return [{ kind: 'alert.evaluate', payload: { seq: event.seq } }];
        return [];
      });
      await this.jobs.enqueueMany(jobs, { trx });
    };
  }

  async evaluate(seq: number): Promise<void> {
    const event = await this.audit.get(seq);
    if (!event) return;
    const action: string = event.action;
    switch (action) {
      case 'user.created': {
        // The signup address and device are the first known ones: no alert for them.
        const userId = event.target?.type === 'user' ? event.target.id : null;
        if (userId) await this.known.observe(userId, { ip: event.ip, device: event.userAgent });
        return;
      }
      case 'login.succeeded': {
        const userId = event.actor.type === 'user' ? event.actor.id : null;
        if (!userId) return;
        const seen = await this.known.observe(userId, { ip: event.ip, device: event.userAgent });
        // The first value of its kind is a baseline (accounts older than this feature), not news.
        const newAddress = Boolean(seen?.ip?.isNew && !seen.ip.firstOfKind);
        const newDevice = Boolean(seen?.device?.isNew && !seen.device.firstOfKind);
        if (!newAddress && !newDevice) return;
        await this.#raise(event, newAddress ? 'new_ip_login' : 'new_device_login', { type: 'user', id: userId }, null,
          { newAddress, newDevice, sessionId: event.target?.id ?? null });
        return;
      }
      case 'api_token.created': {
        if (event.actor.type !== 'user' || !event.actor.id || !event.target) return;
        if (event.ip) await this.known.observe(event.actor.id, { [`token:${event.target.id}`]: event.ip });
        // A token outlives a password reset (it is a separate credential): whoever holds a
        // stolen session could mint one to keep access, so its owner hears of every new one.
        await this.#raise(event, 'token_created', { type: 'user', id: event.actor.id }, event.orgId,
          { tokenId: event.target.id, scopes: event.details['scopes'] ?? [], expiresAt: event.details['expiresAt'] ?? null });
        return;
      }
      case 'api_token.used': {
        const tokenId = event.actor.type === 'token' ? event.actor.id : null;
        const userId = event.target?.type === 'user' ? event.target.id : null;
        if (!tokenId || !userId || !event.ip) return;
        const kind = `token:${tokenId}` as const;
        const seen = (await this.known.observe(userId, { [kind]: event.ip }))?.[kind];
        if (seen?.isNew && !seen.firstOfKind) await this.#raise(event, 'token_new_ip', { type: 'user', id: userId }, event.orgId, { tokenId });
        return;
      }
      case 'policy.updated': {
        const { before, after } = event.details as { before?: OrgPolicy; after?: OrgPolicy };
        if (!before || !after || !event.orgId) return;
        const fields = weakenedPolicyFields(before, after);
        if (fields.length > 0) {
          await this.#raise(event, 'policy_weakened', { type: 'org', id: event.orgId }, event.orgId, { fields, by: event.actor });
        }
        return;
      }
      case 'staff_role.assumed': {
        const userId = event.actor.id;
        if (!userId) return;
        await this.#raise(event, 'staff_role_assumed', { type: 'user', id: userId }, null,
          { role: event.details['role'] ?? null, minutes: event.details['minutes'] ?? null });
        return;
      }
    }
  }

  async #raise(source: AuditEvent, rule: AlertRule, target: { type: string; id: string }, orgId: string | null, details: Record<string, unknown>): Promise<void> {
    const alert: SecurityEventInput = {
      action: 'alert.raised', orgId, actor: { type: 'system', id: null }, target, origin: { ip: source.ip, userAgent: source.userAgent, requestId: source.requestId },
      outcome: 'success', details: { rule, ...details, sourceEventId: source.id },
    };
    await this.events.record(alert);
  }

  /** Who hears of an alert: the user concerned, and owners and admins of the orgs concerned. */
  async notify(seq: number): Promise<void> {
    const alert = await this.audit.get(seq);
    if (!alert) return;
    const rule = String(alert.details['rule']);
    const userId = alert.target?.type === 'user' ? alert.target.id : null;
    const recipients = new Map<string, 'user' | 'admin'>();
    if (userId && USER_RULES.has(rule)) recipients.set(userId, 'user');
    const adminOrgs = rule === 'policy_weakened' && alert.orgId ? [alert.orgId]
      : rule === 'brute_force' && userId ? (await this.options.orgs().membershipsOf(userId)).map((m) => m.orgId)
      : [];
    for (const orgId of adminOrgs) {
      for (const member of await this.options.orgs().listMembers(orgId)) {
        if (ADMIN_ROLES.has(member.role) && !recipients.has(member.userId)) recipients.set(member.userId, 'admin');
      }
    }
    await this.jobs.enqueueMany([...recipients].map(([recipient, audience]) => ({ kind: 'alert.mail', payload: { seq, userId: recipient, audience } })));
  }

  async mail(seq: number, userId: string, audience: 'user' | 'admin'): Promise<void> {
    const alert = await this.audit.get(seq);
    const profile = await this.pii.getProfile(userId);
    if (!alert || !profile) return;
    const message = await this.#compose(alert, audience);
    await this.mailer.send({ to: profile.email, subject: message.subject, text: message.text });
  }

  async #compose(alert: AuditEvent, audience: 'user' | 'admin'): Promise<{ subject: string; text: string }> {
    const product = this.options.productName;
    const rule = String(alert.details['rule']);
    const when = alert.time.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
    const address = alert.ip ?? 'an unknown address';
    const device = alert.userAgent ? oneLine(alert.userAgent) : 'an unknown device';
    const account = this.options.publicUrl();
    const notYou = `If this was not you, change your password now and end your other sessions (${account}/v1/me/sessions), then review your second factors.`;
    switch (rule) {
      case 'new_ip_login':
      case 'new_device_login': {
        const what = rule === 'new_ip_login' ? `a new address: ${address}` : `a new device from ${address}`;
        return {
          subject: `New sign-in to your ${product} account`,
          text: `Your ${product} account was signed in to from ${what}\nDevice: ${device}\nTime: ${when}\n\nIf this was you, there is nothing to do.\n${notYou}\n`,
        };
      }
      case 'token_new_ip':
        return {
          subject: `Your ${product} API token was used from a new address`,
          text: `Your API token ${String(alert.details['tokenId'])} was used from a new address: ${address}\nTime: ${when}\n\nIf you do not recognise this, revoke the token now (${account}/v1/me/tokens).\n`,
        };
      case 'token_created': {
        const scopes = Array.isArray(alert.details['scopes']) ? (alert.details['scopes'] as unknown[]).map((scope) => oneLine(String(scope))).join(', ') : '';
        const expiresAt = alert.details['expiresAt'];
        const expires = typeof expiresAt === 'number' && Number.isFinite(expiresAt) ? new Date(expiresAt).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : 'never';
        return {
          subject: `A new API token was added to your ${product} account`,
          text: `An API token (${oneLine(String(alert.details['tokenId']))}) was created for your ${product} account from ${address}\nScopes: ${scopes}\nExpires: ${expires}\nDevice: ${device}\nTime: ${when}\n\nIf this was you, there is nothing to do.\nIf not, revoke it now (${account}/v1/me/tokens): a token keeps working after a password reset. Then change your password and end your other sessions (${account}/v1/me/sessions).\n`,
        };
      }
      case 'staff_role_assumed':
        return {
          subject: `A ${product} staff role was assumed with your account`,
          text: `The staff role ${oneLine(String(alert.details['role'] ?? 'unknown'))} was assumed with your account from ${address}\nTime: ${when}\n\n${notYou}\n`,
        };
      case 'brute_force': {
        if (audience === 'user') {
          return {
            subject: `Someone is trying to sign in to your ${product} account`,
            text: `${String(alert.details['failures'])} failed sign-ins to your ${product} account within a day, the last from ${address}.\nTime: ${when}\n\nSign-ins from addresses you have not used before are slowed down for now; your usual addresses still work.\nIf you recently forgot your password, this may have been you. Otherwise make sure your password is unique and turn on a second factor.\n`,
          };
        }
        const member = alert.target?.type === 'user' ? await this.pii.getProfile(alert.target.id) : null;
        return {
          subject: `${product}: an account in your organization is under attack`,
          text: `${String(alert.details['failures'])} failed sign-ins within a day to the account of ${member?.email ?? 'a member'}, the last from ${address}.\nTime: ${when}\n\nSign-ins from new addresses are slowed down for this account. Consider requiring a second factor in your organization's policy.\n`,
        };
      }
      case 'policy_weakened': {
        const org = alert.orgId ? await this.options.orgs().getOrg(alert.orgId) : null;
        const by = alert.details['by'] as { id?: string | null } | undefined;
        const actor = by?.id ? await this.pii.getProfile(by.id) : null;
        const fields = Array.isArray(alert.details['fields']) ? (alert.details['fields'] as unknown[]).map(String).join(', ') : '';
        return {
          subject: `${product}: the security policy of ${oneLine(org?.name ?? 'your organization')} was weakened`,
          text: `The security policy of ${oneLine(org?.name ?? 'your organization')} was made less strict by ${actor?.email ?? 'someone'} from ${address}.\nLoosened: ${fields}\nTime: ${when}\n\nIf this was not intended, restore the policy and review the audit log.\n`,
        };
      }
      default:
        return { subject: `${product} security alert`, text: `A security alert (${oneLine(rule)}) was raised at ${when}.\n` };
    }
  }
}

/** Text from a client (a user agent) in a mail: one line, no control characters, bounded. */
function oneLine(value: string): string {
  return value.replace(/[\p{Cc}\u2028\u2029]+/gu, ' ').slice(0, 200);
}
