import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { SecurityEvent, SecurityEventSink, SecurityEvents } from '../../events/security-events.js';
import type { Mailer } from '../../mail/mailer.js';
import type { OrgPolicy } from '../../policy/org-policy.js';

/** What the notifier needs of the orgs feature (`services.orgs`). */
export interface MfaOrgDirectory {
  getOrg(orgId: string): Promise<{ name: string } | null>;
  getPolicy(orgId: string): Promise<OrgPolicy>;
  listMembers(orgId: string): Promise<Array<{ userId: string; email: string }>>;
}

export interface RequirementNotifierDeps {
  orgs: () => MfaOrgDirectory | undefined;
  /** When the member must have enrolled a factor that counts; null when they need not (they have one). */
  enrollmentDeadline: (userId: string) => Promise<number | null>;
  mailer: Mailer;
  events: SecurityEvents;
  logger: Logger;
  productName: string;
  publicUrl: () => string;
  /** Waits before re-reading a policy whose transaction may not have committed yet. */
  commitWaitsMs?: readonly number[];
}

const METHOD_NAMES: Record<string, string> = { totp: 'an authenticator app (TOTP)', webauthn: 'a security key or passkey' };

/**
 * Mails the members of an org who lack a factor it counts when the org starts
 * requiring MFA (or narrows `mfa.methods`), with the date their grace period
 * ends. It listens to `policy.updated`, which is recorded inside the policy
 * transaction: the work is deferred, and done only once the stored policy shows
 * the change (committed), so a rolled-back change mails nobody.
 */
export class MfaRequirementNotifier implements SecurityEventSink {
  readonly #pending = new Set<Promise<void>>();

  constructor(private readonly deps: RequirementNotifierDeps) {}

  record(event: SecurityEvent): void {
    if (event.action !== 'policy.updated' || !event.orgId) return;
    const before = (event.details?.['before'] as OrgPolicy | undefined)?.mfa;
    const after = (event.details?.['after'] as OrgPolicy | undefined)?.mfa;
    if (!after?.required) return;
    const turnedOn = !before?.required;
    const narrowed = before?.required === true && before.methods.some((method) => !after.methods.includes(method));
    if (!turnedOn && !narrowed) return;
    const job: Promise<void> = this.#notify(event.orgId, after.methods)
      .catch((error: unknown) => this.deps.logger.warn({ err: error, orgId: event.orgId }, 'MFA requirement notification failed'))
      .finally(() => this.#pending.delete(job));
    this.#pending.add(job);
  }

  /** Resolves when every notification started so far is done (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  async #notify(orgId: string, methods: readonly string[]): Promise<void> {
    const orgs = this.deps.orgs();
    if (!orgs) return;
    if (!(await this.#committed(orgs, orgId, methods))) return;
    const org = await orgs.getOrg(orgId);
    if (!org) return;
    const name = org.name.replace(/[\p{Cc}\u2028\u2029]/gu, ' ');
    let count = 0;
    for (const member of await orgs.listMembers(orgId)) {
      const deadline = await this.deps.enrollmentDeadline(member.userId);
      if (deadline === null) continue;
      await this.deps.mailer.send({ to: member.email, subject: `${name} requires a second factor`, text: this.#text(name, methods, deadline) });
      count++;
    }
    await this.deps.events.record({
      action: 'mfa_requirement.notified', orgId, actor: { type: 'system', id: null }, target: { type: 'org', id: orgId },
      outcome: 'success', details: { count },
    });
  }

  /** Whether the stored policy requires MFA with these methods (the update committed). */
  async #committed(orgs: MfaOrgDirectory, orgId: string, methods: readonly string[]): Promise<boolean> {
    for (const wait of [0, ...(this.deps.commitWaitsMs ?? [20, 100, 500, 2000])]) {
      await sleep(wait);
      const policy = await orgs.getPolicy(orgId).catch(() => null);
      if (policy?.mfa.required && policy.mfa.methods.length === methods.length && methods.every((m) => policy.mfa.methods.includes(m as never))) return true;
    }
    return false;
  }

  #text(orgName: string, methods: readonly string[], deadline: number): string {
    const choices = methods.map((method) => METHOD_NAMES[method] ?? method).join(' or ');
    const when = Number.isFinite(deadline) ? new Date(deadline).toISOString().replace('T', ' ').slice(0, 16) + ' UTC' : 'now';
    return [
      `The organization "${orgName}" now requires a second factor to sign in to ${this.deps.productName}.`,
      '',
      `Turn on ${choices} before ${when}:`,
      `${this.deps.publicUrl()}`,
      '',
      'Until you do, signing in only lets you set one up. After that time you will not be able to',
      'sign in until an administrator of the service resets your account.',
      '',
      'If you did not expect this, contact the administrators of that organization.',
    ].join('\n');
  }
}
