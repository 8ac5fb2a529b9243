import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { SecurityEvent, SecurityEventSink } from '../events/security-events.js';

/**
 * Prometheus metrics (prom-client), one registry per service instance (tests run
 * several servers in one process). Served on a separate listener, never on the
 * public one (src/metrics/listener.ts). Labels are closed sets: no user, org,
 * address or path parameter ever becomes a label (no cardinality explosion, no
 * personal data in monitoring).
 */
export class Metrics {
  readonly registry = new Registry();
  readonly logins = new Counter({ name: 'rampart_logins_total', help: 'Password logins by outcome (success, failure, denied).', labelNames: ['outcome'], registers: [this.registry] });
  readonly mfa = new Counter({ name: 'rampart_mfa_total', help: 'Second-factor verifications by outcome.', labelNames: ['outcome'], registers: [this.registry] });
  readonly rateLimitHits = new Counter({ name: 'rampart_rate_limit_hits_total', help: 'Requests refused with 429 by a rate-limit tier.', labelNames: ['tier'], registers: [this.registry] });
  readonly rateLimitStoreErrors = new Counter({
    name: 'rampart_rate_limit_store_errors_total',
    help: 'Rate-limit checks the store (Redis) could not answer; decision: allowed (fail-open) or refused (fail-closed, credential routes).',
    labelNames: ['tier', 'decision'],
    registers: [this.registry],
  });
  readonly lockouts = new Counter({ name: 'rampart_login_lockouts_total', help: 'Login attempts refused by per-account back-off (scope: address or account).', labelNames: ['scope'], registers: [this.registry] });
  readonly auditAppends = new Counter({ name: 'rampart_audit_appends_total', help: 'Events appended to the audit chain.', registers: [this.registry] });
  readonly alerts = new Counter({ name: 'rampart_alerts_total', help: 'Alerts raised, by rule.', labelNames: ['rule'], registers: [this.registry] });
  readonly webhookDeliveries = new Counter({
    name: 'rampart_webhook_deliveries_total', help: 'Webhook delivery attempts by outcome (delivered, failed, gave_up, refused).', labelNames: ['outcome'], registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: 'rampart_http_request_duration_seconds',
    help: 'HTTP request latency by method, route pattern and status class.',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'rampart_' });
  }

  /** Counts what the event stream tells: logins and second factors by outcome, alerts by rule. */
  sink(): SecurityEventSink {
    return {
      record: (event: SecurityEvent) => {
        // Compared as text: some of these actions belong to features that may not be installed.
        const action: string = event.action;
        if (event.action === 'login.succeeded') this.logins.inc({ outcome: 'success' });
        else if (event.action === 'login.failed') this.logins.inc({ outcome: event.outcome });
        else if (event.action === 'alert.raised') this.alerts.inc({ rule: String(event.details?.['rule'] ?? 'unknown') });
        if (action === 'mfa.failed') this.mfa.inc({ outcome: 'failure' });
        else if (event.action === 'login.succeeded' && event.details?.['mfa'] === true) this.mfa.inc({ outcome: 'success' });
        else if (event.action === 'reauth.succeeded' && event.details?.['method'] !== 'password') this.mfa.inc({ outcome: 'success' });
      },
    };
  }
}
