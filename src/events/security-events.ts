import type { Transaction } from 'kysely';
import type { Clock } from '../clock.js';
import type { MainDB } from '../store/schema.js';
import type { EventAction } from './catalogue.js';

export type ActorType = 'user' | 'token' | 'staff' | 'system' | 'anonymous';

export interface SecurityEventInput {
  action: EventAction;
  orgId?: string | null;
  actor: { type: ActorType; id: string | null };
  target?: { type: string; id: string } | null;
  /** Where it came from: the flow's RequestMeta (client address, user agent, request id), or none. */
  origin?: EventOrigin | null;
  outcome: 'success' | 'failure' | 'denied';
  /** Small, non-secret facts. Never a password, token, code or personal data. */
  details?: Record<string, unknown>;
}

/**
 * The request an event came from; `RequestMeta` (src/auth/flows/request-meta.ts)
 * is one. The request id is passed explicitly rather than through
 * AsyncLocalStorage, whose promise hooks cost Node 20 about a quarter of the CPU
 * of a cheap request.
 */
export interface EventOrigin {
  ip: string | null;
  userAgent: string | null;
  requestId?: string | null;
}

export interface SecurityEvent extends Omit<SecurityEventInput, 'origin'> {
  ip?: string | null;
  userAgent?: string | null;
  /** The HTTP request it happened in (its x-request-id), or null. */
  requestId?: string | null;
  /** Epoch milliseconds. */
  time: number;
}

/**
 * A consumer of security events (the audit log, alerts, metrics, the log).
 * `transaction` is given when the event belongs to a write of the main store:
 * a sink that stores events should append inside it, so the change and its
 * record commit or roll back together.
 */
export interface SecurityEventSink {
  record(event: SecurityEvent, transaction?: Transaction<MainDB>): Promise<void> | void;
}

/** The one function every domain calls to report a security-relevant event. */
export class SecurityEvents {
  readonly #sinks: SecurityEventSink[] = [];

  constructor(private readonly clock: Clock) {}

  addSink(sink: SecurityEventSink): void {
    this.#sinks.push(sink);
  }

  async record(input: SecurityEventInput, transaction?: Transaction<MainDB>): Promise<void> {
    const { origin, ...rest } = input;
    const event: SecurityEvent = { ...rest, ip: origin?.ip ?? null, userAgent: origin?.userAgent ?? null, requestId: origin?.requestId ?? null, time: this.clock.now() };
    for (const sink of this.#sinks) await sink.record(event, transaction);
  }
}
