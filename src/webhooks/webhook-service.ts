import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { AppendListener, AuditLog } from '../audit/audit-log.js';
import type { AuditEvent } from '../audit/chain.js';
import type { RequestMeta } from '../auth/flows/request-meta.js';
import type { Clock } from '../clock.js';
import { decryptString, encrypt } from '../crypto/aead.js';
import { type Keyring, keyVersionOf, withKeyVersion } from '../crypto/keyring.js';
import { randomId, randomToken } from '../crypto/random.js';
import { RampartError } from '../errors.js';
import type { SecurityEventInput, SecurityEvents } from '../events/security-events.js';
import type { JobQueue } from '../jobs/job-queue.js';
import { PermanentJobError } from '../jobs/job-queue.js';
import type { Metrics } from '../metrics/metrics.js';
import type { JobRepository } from '../store/repositories/jobs.js';
import type { WebhookRepository, WebhookRow } from '../store/repositories/webhooks.js';
import type { MainDB } from '../store/schema.js';
import { signWebhookWithEach } from '../sdk/webhook-signature.js';
import { assertAllowedHost, type Destination, DestinationRefused, parseWebhookUrl, resolveDestination, type Resolver } from './ssrf.js';

export const WEBHOOK_SECRET_PURPOSE = 'webhook-secret';
export const MAX_WEBHOOKS_PER_ORG = 20;
const DELIVERY_TIMEOUT_MS = 10_000;
/** 10 s, 20 s, 40 s … capped at an hour, twelve attempts: a receiver may be down for about five hours. */
const DELIVERY_RETRY = { baseDelayMs: 10_000, maxDelayMs: 3_600_000, maxAttempts: 12 };

export interface PublicWebhook {
  id: string;
  url: string;
  events: string[];
  createdAt: string;
  /** After a rollover: until when the previous secret still signs deliveries beside the current one. */
  previousSecretExpiresAt: string | null;
  deliveries: DeliveryHealth;
}

/** The longest a rolled-over secret may keep signing (a week), and the default (a day). */
export const MAX_SECRET_OVERLAP_HOURS = 168;
export const DEFAULT_SECRET_OVERLAP_HOURS = 24;

/**
 * Why a delivery attempt failed, as an org admin may see it: a category (and the HTTP
 * status the receiver answered), never the raw error, which could name addresses or
 * hosts behind the receiver's name.
 */
export type DeliveryFailureReason = 'tls' | 'timeout' | 'dns' | 'connection' | 'destination_refused' | 'http_status' | 'secret_unreadable' | 'other';

/** How a webhook's deliveries fare, for its admins (GET /v1/orgs/{orgId}/webhooks). */
export interface DeliveryHealth {
  /** Deliveries waiting for their first attempt or a retry. */
  pending: number;
  /** Deliveries given up after every retry failed (twelve attempts over about five hours), for the 30 days the failed-job sweep keeps them. */
  abandoned: number;
  lastDeliveredAt: string | null;
  lastFailure: { at: string; reason: DeliveryFailureReason; status: number | null } | null;
}

export interface WebhookOptions {
  /** RAMPART_INSECURE_WEBHOOKS_TO_PRIVATE_NETWORKS: private, loopback and link-local destinations and plain http allowed. */
  allowPrivate: boolean;
  /** WEBHOOK_ALLOWED_HOSTS: the only hosts webhooks may reach (empty: any public host). */
  allowedHosts?: readonly string[];
  resolver?: Resolver;
}

/**
 * Org webhooks (API.md): admins register `{url, events[]}`; every audit event of
 * the org (its own, and its members' personal events) whose action matches is
 * delivered as a signed POST. The delivery job is written in the event's own
 * transaction (durable queue), retried with exponential back-off, and each
 * attempt resolves and checks the destination again and connects to exactly the
 * address it checked (SSRF and DNS rebinding).
 */
export class WebhookService {
  constructor(
    private readonly db: Kysely<MainDB>,
    private readonly repo: WebhookRepository,
    private readonly jobRepo: JobRepository,
    private readonly keyring: Keyring,
    private readonly events: SecurityEvents,
    private readonly jobs: JobQueue,
    private readonly audit: AuditLog,
    private readonly metrics: Metrics,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: WebhookOptions,
  ) {
    jobs.register('webhook.deliver', { retry: DELIVERY_RETRY }, (payload, job) =>
      this.deliver(String(payload['webhookId']), Number(payload['seq']), job.id, job.attempts));
  }

  async init(): Promise<void> {
    await this.keyring.current(WEBHOOK_SECRET_PURPOSE);
  }

  /** Registers a webhook; the secret is returned once, here, and stored encrypted. */
  async create(orgId: string, actor: SecurityEventInput['actor'], input: { url: string; events: string[] }, meta: RequestMeta): Promise<PublicWebhook & { secret: string }> {
    let url: URL;
    try {
      url = parseWebhookUrl(input.url, this.options.allowPrivate);
      assertAllowedHost(url, this.options.allowedHosts ?? []);
      await resolveDestination(url, this.options.allowPrivate, this.options.resolver);
    } catch (error) {
      if (error instanceof DestinationRefused) throw new RampartError('webhook_url_not_allowed', { publicDetail: `The webhook URL is refused: ${error.message}.` });
      throw error;
    }
    // The current version, read now: `rampart keys rotate-webhook` may have added one.
    const current = await this.keyring.current(WEBHOOK_SECRET_PURPOSE);
    const id = randomId('whk');
    const secret = `whsec_${randomToken(32)}`;
    const events = [...new Set(input.events)].sort();
    const row: WebhookRow = {
      id, org_id: orgId, url: url.toString(), events: JSON.stringify(events), secret_enc: withKeyVersion(current.version, encrypt(current.key, secret, `webhook:${id}`)),
      created_by: actor.id, created_at: this.clock.now(),
      last_delivered_at: null, last_failed_at: null, last_failure_reason: null, last_failure_status: null,
      previous_secret_enc: null, previous_secret_expires_at: null,
    };
    await this.db.transaction().execute(async (trx) => {
      if (await this.repo.countForOrgHeld(orgId, trx) >= MAX_WEBHOOKS_PER_ORG) {
        throw new RampartError('webhook_limit_reached', { publicDetail: `An organization has at most ${MAX_WEBHOOKS_PER_ORG} webhooks.` });
      }
      await this.repo.insert(row, trx);
      await this.events.record({
        action: 'webhook.created', orgId, actor, target: { type: 'webhook', id }, origin: meta,
        outcome: 'success', details: { host: url.host, events },
      }, trx);
    });
    return { ...toPublic(row, row.created_at), secret };
  }

  /**
   * Adds a version of the key that encrypts webhook signing secrets and re-encrypts every
   * stored secret under it, with a `webhook_key.rotated` event, in one transaction. The
   * secrets themselves do not change (receivers notice nothing); older key versions stay
   * in the keyring, so a secret a concurrent registration sealed under the previous version
   * still opens (the next rotation moves it). A secret that does not open is left as it is
   * and counted.
   */
  async rotateSecretKey(actor: SecurityEventInput['actor']): Promise<{ version: number; reencrypted: number; unreadable: number }> {
    return this.db.transaction().execute(async (trx) => {
      const version = await this.keyring.rotate(WEBHOOK_SECRET_PURPOSE, trx);
      // Keys read in the transaction: on SQLite a read outside it would wait for its one connection.
      const newKey = (await this.keyring.keyAt(WEBHOOK_SECRET_PURPOSE, version, trx))!;
      let reencrypted = 0;
      let unreadable = 0;
      for (const hook of await this.repo.allSecrets(trx)) {
        const secret = await this.#openSealed(hook.id, hook.secret_enc, trx);
        if (secret === null) {
          unreadable++;
          continue;
        }
        const sealed = withKeyVersion(version, encrypt(newKey, secret, `webhook:${hook.id}`));
        if (await this.repo.replaceSecret(hook.id, hook.secret_enc, sealed, trx)) reencrypted++;
        // A rolled-over secret still signing moves with it (one that does not open is left to expire).
        if (hook.previous_secret_enc !== null) {
          const previous = await this.#openSealed(hook.id, hook.previous_secret_enc, trx);
          if (previous !== null) await this.repo.replacePreviousSecret(hook.id, hook.previous_secret_enc, withKeyVersion(version, encrypt(newKey, previous, `webhook:${hook.id}`)), trx);
        }
      }
      await this.events.record({
        action: 'webhook_key.rotated', actor, target: { type: 'webhook_key', id: String(version) },
        origin: { ip: null, userAgent: null }, outcome: 'success', details: { version, reencrypted, unreadable },
      }, trx);
      return { version, reencrypted, unreadable };
    });
  }

  /** A webhook's signing secret (current or previous), opened with the key version that sealed it; null when it does not open. */
  async #openSealed(webhookId: string, sealedWithVersion: string, executor?: Transaction<MainDB>): Promise<string | null> {
    const stored = keyVersionOf(sealedWithVersion);
    const key = await this.keyring.keyAt(WEBHOOK_SECRET_PURPOSE, stored.version, executor);
    return key ? decryptString(key, stored.sealed, `webhook:${webhookId}`) : null;
  }

  /**
   * Rolls a webhook's signing secret over: a new secret (shown once) signs from now on, and
   * the one it replaces keeps signing beside it for `overlapHours` (0: stops at once, after a
   * leak), so receivers can move to the new secret without refusing a delivery. A secret
   * rolled over before and still signing is dropped: at most two sign at once.
   */
  async rollSecret(orgId: string, id: string, actor: SecurityEventInput['actor'], overlapHours: number, meta: RequestMeta): Promise<PublicWebhook & { secret: string }> {
    const secret = `whsec_${randomToken(32)}`;
    const now = this.clock.now();
    const previousExpiresAt = overlapHours > 0 ? now + overlapHours * 3_600_000 : null;
    const row = await this.db.transaction().execute(async (trx) => {
      const hook = await this.repo.find(orgId, id, trx);
      if (!hook) throw new RampartError('not_found');
      const current = await this.keyring.current(WEBHOOK_SECRET_PURPOSE, trx);
      const seal = (value: string) => withKeyVersion(current.version, encrypt(current.key, value, `webhook:${id}`));
      let previous: string | null = null;
      if (previousExpiresAt !== null) {
        const old = await this.#openSealed(hook.id, hook.secret_enc, trx);
        // A secret that does not open cannot sign either: it is simply replaced.
        if (old !== null) previous = seal(old);
      }
      const sealed = seal(secret);
      if (!(await this.repo.rollSecret(orgId, id, hook.secret_enc, sealed, previous, previous === null ? null : previousExpiresAt, trx))) {
        throw new RampartError('conflict', { publicDetail: 'The webhook changed meanwhile; try again.' });
      }
      await this.events.record({
        action: 'webhook.secret_rotated', orgId, actor, target: { type: 'webhook', id }, origin: meta,
        outcome: 'success', details: { previousSecretExpiresAt: previous === null ? null : new Date(previousExpiresAt!).toISOString() },
      }, trx);
      return { ...hook, secret_enc: sealed, previous_secret_enc: previous, previous_secret_expires_at: previous === null ? null : previousExpiresAt };
    });
    const counts = (await this.jobRepo.countByRef([id])).get(id);
    return { ...toPublic(row, now, counts), secret };
  }

  async list(orgId: string): Promise<PublicWebhook[]> {
    const rows = await this.repo.listForOrg(orgId);
    const counts = await this.jobRepo.countByRef(rows.map((row) => row.id));
    return rows.map((row) => toPublic(row, this.clock.now(), counts.get(row.id)));
  }

  async get(orgId: string, id: string): Promise<PublicWebhook> {
    const row = await this.repo.find(orgId, id);
    if (!row) throw new RampartError('not_found');
    return toPublic(row, this.clock.now(), (await this.jobRepo.countByRef([id])).get(id));
  }

  /**
   * Queues the webhook's abandoned deliveries again (after the receiver was fixed), each from
   * its first attempt with the same delivery id, so receivers still de-duplicate. Audited with
   * the count.
   */
  async redeliverAbandoned(orgId: string, id: string, actor: SecurityEventInput['actor'], meta: RequestMeta): Promise<{ requeued: number }> {
    return this.db.transaction().execute(async (trx) => {
      if (!(await this.repo.find(orgId, id, trx))) throw new RampartError('not_found');
      const requeued = await this.jobRepo.requeueFailedByRef(id, this.clock.now(), trx);
      await this.events.record({
        action: 'webhook.redelivered', orgId, actor, target: { type: 'webhook', id }, origin: meta,
        outcome: 'success', details: { requeued },
      }, trx);
      return { requeued };
    });
  }

  /** Deletes a webhook and drops its pending deliveries. */
  async remove(orgId: string, id: string, actor: SecurityEventInput['actor'], meta: RequestMeta): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      if (!(await this.repo.delete(orgId, id, trx))) throw new RampartError('not_found');
      const dropped = await this.jobRepo.deleteByRef(id, trx);
      await this.events.record({
        action: 'webhook.deleted', orgId, actor, target: { type: 'webhook', id }, origin: meta,
        outcome: 'success', details: { droppedDeliveries: dropped },
      }, trx);
    });
  }

  /** Inside each audit append: one delivery job per matching webhook of the orgs that see the event. */
  listener(): AppendListener {
    return async (appended, trx, orgsOf) => {
      const orgIds = [...new Set(appended.flatMap((event) => orgsOf(event.seq)))];
      const hooks = await this.repo.forOrgs(orgIds, trx);
      if (hooks.length === 0) return;
      const jobs = appended.flatMap((event) => hooks
        .filter((hook) => orgsOf(event.seq).includes(hook.org_id) && subscribes(hook, event.action))
        .map((hook) => ({ kind: 'webhook.deliver', payload: { webhookId: hook.id, seq: event.seq }, ref: hook.id })));
      await this.jobs.enqueueMany(jobs, { trx });
    };
  }

  /** One attempt; its outcome is kept on the webhook for its admins (see `DeliveryHealth`). */
  async deliver(webhookId: string, seq: number, deliveryId: string, attempt: number): Promise<void> {
    const hook = await this.repo.findById(webhookId);
    const event = await this.audit.get(seq);
    if (!hook || !event) return; // deleted meanwhile (or pruned): nothing to deliver
    try {
      await this.#attempt(hook, event, deliveryId, attempt);
    } catch (error) {
      const { reason, status } = failureOf(error);
      await this.repo.recordFailed(webhookId, this.clock.now(), reason, status);
      throw error instanceof DeliveryError ? error.inner : error;
    }
    await this.repo.recordDelivered(webhookId, this.clock.now());
  }

  async #attempt(hook: WebhookRow, event: AuditEvent, deliveryId: string, attempt: number): Promise<void> {
    const secret = await this.#openSealed(hook.id, hook.secret_enc);
    if (secret === null) throw new DeliveryError('secret_unreadable', null, new PermanentJobError('the webhook secret does not decrypt'));
    const secrets = [secret];
    // A rolled-over secret signs beside the new one until it expires.
    if (previousSecretSigns(hook, this.clock.now())) {
      const previous = await this.#openSealed(hook.id, hook.previous_secret_enc!);
      if (previous !== null) secrets.push(previous);
    }
    const url = new URL(hook.url);
    let destination: Destination;
    try {
      assertAllowedHost(url, this.options.allowedHosts ?? []);
      destination = await resolveDestination(url, this.options.allowPrivate, this.options.resolver);
    } catch (error) {
      this.metrics.webhookDeliveries.inc({ outcome: 'refused' });
      if (!(error instanceof DestinationRefused)) throw error;
      throw new DeliveryError(error.kind === 'unresolvable' ? 'dns' : 'destination_refused', null, new Error(`destination refused: ${error.message}`));
    }
    const body = JSON.stringify({ id: deliveryId, type: event.action, attempt, event });
    const timestamp = Math.floor(this.clock.now() / 1000);
    let status: number;
    try {
      status = await post(url, destination, body, {
        'content-type': 'application/json',
        'user-agent': 'Rampart-Webhooks/1',
        'rampart-signature': signWebhookWithEach(secrets, timestamp, body),
        'rampart-delivery': deliveryId,
        'rampart-event': event.action,
      });
    } catch (error) {
      this.metrics.webhookDeliveries.inc({ outcome: 'failed' });
      throw new DeliveryError(networkFailure(error as NodeJS.ErrnoException), null, new Error(`delivery failed: ${(error as Error).message}`));
    }
    if (status < 200 || status >= 300) {
      this.metrics.webhookDeliveries.inc({ outcome: 'failed' });
      throw new DeliveryError('http_status', status, new Error(`the receiver answered ${status}`));
    }
    this.metrics.webhookDeliveries.inc({ outcome: 'delivered' });
    this.logger.debug({ webhookId: hook.id, seq: event.seq, status }, 'webhook delivered');
  }
}

function subscribes(hook: WebhookRow, action: string): boolean {
  const events = JSON.parse(hook.events) as string[];
  return events.includes('*') || events.includes(action);
}

/** Whether a rolled-over secret still signs beside the current one. */
function previousSecretSigns(row: Pick<WebhookRow, 'previous_secret_enc' | 'previous_secret_expires_at'>, now: number): boolean {
  return row.previous_secret_enc !== null && Number(row.previous_secret_expires_at) > now;
}

function toPublic(row: WebhookRow, now: number, counts: { pending: number; abandoned: number } = { pending: 0, abandoned: 0 }): PublicWebhook {
  const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());
  return {
    id: row.id,
    url: row.url,
    events: JSON.parse(row.events) as string[],
    createdAt: iso(row.created_at)!,
    previousSecretExpiresAt: previousSecretSigns(row, now) ? iso(row.previous_secret_expires_at) : null,
    deliveries: {
      ...counts,
      lastDeliveredAt: iso(row.last_delivered_at),
      lastFailure: row.last_failed_at === null ? null : { at: iso(row.last_failed_at)!, reason: (row.last_failure_reason ?? 'other') as DeliveryFailureReason, status: row.last_failure_status === null ? null : Number(row.last_failure_status) },
    },
  };
}

/**
 * A failed attempt with its category. The job queue sees the inner error (its message is
 * the job's `last_error`, for operators; a PermanentJobError still ends the retries).
 */
class DeliveryError extends Error {
  constructor(readonly reason: DeliveryFailureReason, readonly status: number | null, readonly inner: Error) {
    super(inner.message);
  }
}

function failureOf(error: unknown): { reason: DeliveryFailureReason; status: number | null } {
  return error instanceof DeliveryError ? { reason: error.reason, status: error.status } : { reason: 'other', status: null };
}

/** Node's error codes, sorted into what an admin can act on. */
function networkFailure(error: NodeJS.ErrnoException): DeliveryFailureReason {
  const code = error.code ?? '';
  if (error.message === 'timed out' || code === 'ETIMEDOUT') return 'timeout';
  if (/CERT|SSL|TLS|SIGNATURE|ISSUER|EPROTO/.test(code)) return 'tls';
  if (['ENOTFOUND', 'EAI_AGAIN', 'ENODATA'].includes(code)) return 'dns';
  if (['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED'].includes(code)) return 'connection';
  return 'other';
}

/**
 * One POST to the checked address only: the connection's lookup is pinned to
 * it, TLS still verifies the certificate against the URL's host name, redirects
 * are not followed, and the whole exchange has a deadline.
 */
function post(url: URL, destination: Destination, body: string, headers: Record<string, string>): Promise<number> {
  const pinned: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all) (callback as unknown as (e: null, a: Destination[]) => void)(null, [destination]);
    else callback(null, destination.address, destination.family);
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      lookup: pinned,
      agent: false,
      timeout: DELIVERY_TIMEOUT_MS,
    }, (res) => {
      res.resume(); // the answer's body is not read
      res.on('error', () => undefined);
      resolve(res.statusCode ?? 0);
      res.destroy();
    });
    const deadline = setTimeout(() => req.destroy(new Error('timed out')), DELIVERY_TIMEOUT_MS);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (error) => {
      clearTimeout(deadline);
      reject(error);
    });
    req.on('close', () => clearTimeout(deadline));
    req.end(body);
  });
}
