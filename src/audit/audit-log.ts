import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../clock.js';
import type { Keyring } from '../crypto/keyring.js';
import { randomId } from '../crypto/random.js';
import type { SecurityEvent, SecurityEventSink } from '../events/security-events.js';
import { type AuditEventRow, AuditRepository } from '../store/repositories/audit.js';
import type { MainDB } from '../store/schema.js';
import { jsonNormalize } from './canonical-json.js';
import { type AuditEvent, type AuditEventBody, chainHash } from './chain.js';
import { AuditFieldKeys, type AuditOpeningKeys, eventKey, openAuditField, sealAuditField } from './field-keys.js';

const PAGE_SIZE = 1000;

export interface AuditFilter {
  orgId?: string;
  userId?: string;
  action?: string;
  actorId?: string;
}

export interface BrokenLink {
  /** The first seq at which the chain does not hold. */
  seq: number;
  /** The event's id when the row exists. */
  id: string | null;
  reason: string;
}

export interface VerifyResult {
  valid: boolean;
  /** Events checked (of the org, when verifying for one). */
  count: number;
  headSeq: number;
  headHash: string;
  /** The first retained seq (retention pruning moves it forward). */
  firstSeq: number;
  broken: BrokenLink | null;
}

export interface VerifyOptions {
  /** Report the count of this org's events (the whole chain is still walked: links cross orgs). */
  orgId?: string;
  onStart?: (total: number) => void;
  onProgress?: (done: number) => void;
}

/** Observes appends (metrics, alert fan-out, webhook queue) inside the appending transaction. */
export type AppendListener = (events: readonly AuditEvent[], trx: Transaction<MainDB>, orgsOf: (seq: number) => readonly string[]) => Promise<void> | void;

/**
 * The tamper-evident audit log: every security event is appended to one
 * hash-chained table, `hash = SHA-256(prevHash || canonical JSON of the event)`.
 *
 * An event recorded inside a transaction is appended in it (the change and its
 * record commit together); otherwise in a transaction of its own. The chain head
 * is serialized in the database (see AuditRepository.reserve), so appends from
 * concurrent requests and from several instances on one PostgreSQL stay in order.
 * Nothing here updates or deletes an event except retention pruning, which
 * anchors the chain at the first kept event.
 */
/** How long a full verification answers API callers before the chain is walked again. */
export const VERIFY_REUSE_MS = 60_000;

export class AuditLog implements SecurityEventSink {
  readonly #repo: AuditRepository;
  readonly #fieldKeys: AuditFieldKeys;
  readonly #listeners: AppendListener[] = [];
  #shared: { at: number; result: Promise<VerifyResult> } | null = null;

  constructor(
    private readonly db: Kysely<MainDB>,
    keyring: Keyring,
    private readonly clock: Clock,
  ) {
    this.#repo = new AuditRepository(db);
    this.#fieldKeys = new AuditFieldKeys(keyring, () => clock.now());
  }

  /** Loads the encryption key, so that appends inside a transaction never wait for a key lookup. */
  async init(): Promise<void> {
    await this.#fieldKeys.init();
  }

  onAppend(listener: AppendListener): void {
    this.#listeners.push(listener);
  }

  async record(event: SecurityEvent, transaction?: Transaction<MainDB>): Promise<void> {
    await this.append([event], transaction);
  }

  /** Appends events in order, in `transaction` when given; returns them as stored. */
  async append(events: readonly SecurityEvent[], transaction?: Transaction<MainDB>): Promise<AuditEvent[]> {
    if (events.length === 0) return [];
    if (transaction) return this.#appendIn(events, transaction);
    return this.db.transaction().execute((trx) => this.#appendIn(events, trx));
  }

  async #appendIn(events: readonly SecurityEvent[], trx: Transaction<MainDB>): Promise<AuditEvent[]> {
    const sealing = await this.#fieldKeys.sealing(trx);
    const { lastSeq, prevHash: firstPrev } = await this.#repo.reserve(events.length, trx);
    let prevHash = firstPrev;
    const rows: AuditEventRow[] = [];
    const appended: AuditEvent[] = [];
    events.forEach((event, index) => {
      const body: AuditEventBody = {
        id: randomId('evt'),
        seq: lastSeq - events.length + 1 + index,
        time: new Date(event.time).toISOString(),
        orgId: event.orgId ?? null,
        actor: { type: event.actor.type, id: event.actor.id ?? null },
        action: event.action,
        target: event.target ? { type: event.target.type, id: event.target.id } : null,
        ip: event.ip ?? null,
        userAgent: event.userAgent ?? null,
        outcome: event.outcome,
        details: jsonNormalize(event.details ?? {}),
        requestId: event.requestId ?? null,
      };
      const hash = chainHash(prevHash, body);
      const fieldKey = body.ip === null && body.userAgent === null ? null : eventKey(sealing.key, body.id);
      rows.push({
        seq: body.seq,
        id: body.id,
        time: event.time,
        org_id: body.orgId,
        actor_type: body.actor.type,
        actor_id: body.actor.id,
        action: body.action,
        target_type: body.target?.type ?? null,
        target_id: body.target?.id ?? null,
        user_id: concernedUser(body),
        ip_enc: body.ip === null ? null : sealAuditField(sealing, fieldKey!, body.id, 'ip', body.ip),
        user_agent_enc: body.userAgent === null ? null : sealAuditField(sealing, fieldKey!, body.id, 'user_agent', body.userAgent),
        outcome: body.outcome,
        details: JSON.stringify(body.details),
        request_id: body.requestId,
        prev_hash: prevHash,
        hash,
      });
      appended.push({ ...body, prevHash, hash });
      prevHash = hash;
    });
    await this.#repo.insert(rows, trx);
    await this.#repo.setHeadHash(prevHash, trx);
    const links = await this.#orgLinks(rows, trx);
    await this.#repo.insertOrgLinks(links, trx);
    const orgsOf = orgsOfSeq(links);
    for (const listener of this.#listeners) await listener(appended, trx, orgsOf);
    return appended;
  }

  /**
   * The orgs that see each event: its own org; for an event about a user without
   * an org (a login, a factor change), every org the user belongs to now.
   */
  async #orgLinks(rows: readonly AuditEventRow[], trx: Transaction<MainDB>): Promise<Array<{ org_id: string; seq: number }>> {
    const userIds = [...new Set(rows.filter((row) => row.org_id === null && row.user_id !== null).map((row) => row.user_id!))];
    const orgsOf = await this.#repo.orgsOfUsers(userIds, trx);
    return rows.flatMap((row) => {
      if (row.org_id !== null) return [{ org_id: row.org_id, seq: row.seq }];
      return (row.user_id === null ? [] : orgsOf.get(row.user_id) ?? []).map((orgId) => ({ org_id: orgId, seq: row.seq }));
    });
  }

  /** One event by its sequence number (null when pruned or never written). */
  async get(seq: number): Promise<AuditEvent | null> {
    const row = await this.#repo.findBySeq(seq);
    return row ? toEvent(row, await this.#fieldKeys.openingFor([row])) : null;
  }

  /** One page in seq order; `next` is the cursor for `after` (null at the end). */
  async list(filter: AuditFilter & { after?: number; limit: number }): Promise<{ events: AuditEvent[]; next: string | null }> {
    const rows = await this.#repo.find({ ...pick(filter), afterSeq: filter.after, limit: filter.limit + 1 });
    const page = rows.slice(0, filter.limit);
    const keys = await this.#fieldKeys.openingFor(page);
    const next = rows.length > filter.limit ? String(page[page.length - 1]!.seq) : null;
    return { events: page.map((row) => toEvent(row, keys)), next };
  }

  /** The newest events first (the user's security feed). */
  async latest(filter: AuditFilter & { before?: number; limit: number }): Promise<{ events: AuditEvent[]; next: string | null }> {
    const rows = await this.#repo.find({ ...pick(filter), beforeSeq: filter.before, limit: filter.limit + 1, order: 'desc' });
    const page = rows.slice(0, filter.limit);
    const keys = await this.#fieldKeys.openingFor(page);
    const next = rows.length > filter.limit ? String(page[page.length - 1]!.seq) : null;
    return { events: page.map((row) => toEvent(row, keys)), next };
  }

  /**
   * Every matching event in seq order after `afterSeq`, read page by page (constant
   * memory), up to the head as it was when the stream started.
   */
  async *stream(filter: AuditFilter = {}, afterSeq = 0): AsyncGenerator<AuditEvent> {
    const { seq: maxSeq } = await this.#repo.head();
    let after = afterSeq;
    for (;;) {
      const rows = await this.#repo.find({ ...pick(filter), afterSeq: after, maxSeq, limit: PAGE_SIZE });
      const keys = await this.#fieldKeys.openingFor(rows);
      for (const row of rows) yield toEvent(row, keys);
      if (rows.length < PAGE_SIZE) return;
      after = rows[rows.length - 1]!.seq;
    }
  }

  /**
   * Walks the chain from its anchor to its head and names the first broken
   * link: a missing event, an event whose content no longer matches its hash,
   * or an event that does not link to the one before it.
   */
  async verify(options: VerifyOptions = {}): Promise<VerifyResult> {
    const head = await this.#repo.head();
    options.onStart?.(Math.max(0, head.seq - head.first_seq + 1));
    let expectedSeq = head.first_seq;
    let prevHash = head.first_prev_hash;
    let count = 0;
    let done = 0;
    const result = (broken: BrokenLink | null): VerifyResult => ({
      valid: broken === null, count, headSeq: head.seq, headHash: head.hash, firstSeq: head.first_seq, broken,
    });
    for (;;) {
      const rows = await this.#repo.find({ afterSeq: expectedSeq - 1, maxSeq: head.seq, limit: PAGE_SIZE });
      const keys = await this.#fieldKeys.openingFor(rows);
      for (const row of rows) {
        if (row.seq !== expectedSeq) return result({ seq: expectedSeq, id: null, reason: `event ${expectedSeq} is missing` });
        const problem = checkRow(row, prevHash, keys);
        if (problem) return result({ seq: row.seq, id: row.id, reason: problem });
        count++;
        prevHash = row.hash;
        expectedSeq++;
        done++;
      }
      options.onProgress?.(done);
      if (rows.length < PAGE_SIZE) break;
    }
    if (expectedSeq - 1 !== head.seq) {
      const missing = expectedSeq === head.seq ? `event ${head.seq} is` : `events ${expectedSeq}..${head.seq} are`;
      return result({ seq: expectedSeq, id: null, reason: `${missing} missing (the head is at ${head.seq})` });
    }
    if (prevHash !== head.hash) return result({ seq: head.seq, id: null, reason: 'the last event does not match the recorded head hash' });
    if (options.orgId !== undefined) count = await this.#repo.countForOrg(options.orgId, head.first_seq, head.seq);
    return result(null);
  }

  /**
   * The API's verification (`/audit/verify`): one full walk at a time per
   * instance, and its result reused for VERIFY_REUSE_MS, so that callers cannot
   * make the server walk a long chain over and over. The org's count covers the
   * verified range. (`rampart audit verify` always walks the chain itself.)
   */
  async verifyShared(orgId: string): Promise<VerifyResult> {
    const now = this.clock.now();
    if (!this.#shared || now - this.#shared.at >= VERIFY_REUSE_MS || now < this.#shared.at) {
      const result = this.verify();
      this.#shared = { at: now, result };
      result.catch(() => {
        if (this.#shared?.result === result) this.#shared = null;
      });
    }
    const result = await this.#shared.result;
    return { ...result, count: await this.#repo.countForOrg(orgId, result.firstSeq, result.headSeq) };
  }

  /**
   * Retention: deletes events older than `olderThanMs` and anchors the chain at
   * the first kept event, then appends an `audit.pruned` event recording the
   * anchor, in the same transaction. The kept chain still verifies.
   */
  async prune(olderThanMs: number, actor: SecurityEvent['actor']): Promise<{ deleted: number; firstSeq: number }> {
    return this.db.transaction().execute(async (trx) => {
      const { count, lastSeq } = await this.#repo.countOlderThan(olderThanMs, trx);
      if (count === 0 || lastSeq === null) return { deleted: 0, firstSeq: (await this.#repo.head(trx)).first_seq };
      // Only a prefix of the chain can go (never holes): everything up to the last old event. Instances'
      // clocks differ slightly, so a few events near the cut-off may go with it.
      const { deleted, anchor } = await this.#repo.pruneThrough(lastSeq, trx);
      await this.append([{
        action: 'audit.pruned', actor, outcome: 'success', time: this.clock.now(),
        details: { deleted, firstSeq: anchor.seq, anchorHash: anchor.prevHash, olderThan: new Date(olderThanMs).toISOString() },
      }], trx);
      return { deleted, firstSeq: anchor.seq };
    });
  }
}

function pick(filter: AuditFilter): AuditFilter {
  const out: AuditFilter = {};
  if (filter.orgId !== undefined) out.orgId = filter.orgId;
  if (filter.userId !== undefined) out.userId = filter.userId;
  if (filter.action !== undefined) out.action = filter.action;
  if (filter.actorId !== undefined) out.actorId = filter.actorId;
  return out;
}

/**
 * The listeners' `orgsOf` over an append's org links. A factory rather than a local
 * arrow: tsx keeps function names, and naming a fresh closure on every append costs
 * an `Object.defineProperty`.
 */
function orgsOfSeq(links: ReadonlyArray<{ org_id: string; seq: number }>): (seq: number) => readonly string[] {
  return (seq) => links.filter((link) => link.seq === seq).map((link) => link.org_id);
}

/** The user an event is about: the target when it is a user, else a user actor. */
function concernedUser(body: Pick<AuditEventBody, 'actor' | 'target'>): string | null {
  if (body.target?.type === 'user') return body.target.id;
  if (body.actor.type === 'user') return body.actor.id;
  return null;
}

function toBody(row: AuditEventRow, keys: AuditOpeningKeys): AuditEventBody | string {
  const ip = openAuditField(keys, row.ip_enc, row.id, 'ip');
  const userAgent = openAuditField(keys, row.user_agent_enc, row.id, 'user_agent');
  if (ip === undefined || userAgent === undefined) return 'the encrypted address or user agent does not decrypt';
  let details: Record<string, unknown>;
  try {
    details = JSON.parse(row.details) as Record<string, unknown>;
  } catch {
    return 'the details are not valid JSON';
  }
  return {
    id: row.id,
    seq: row.seq,
    time: new Date(Number(row.time)).toISOString(),
    orgId: row.org_id,
    actor: { type: row.actor_type, id: row.actor_id },
    action: row.action,
    target: row.target_type === null ? null : { type: row.target_type, id: row.target_id ?? '' },
    ip,
    userAgent,
    outcome: row.outcome,
    details,
    requestId: row.request_id,
  };
}

function toEvent(row: AuditEventRow, keys: AuditOpeningKeys): AuditEvent {
  const body = toBody(row, keys);
  if (typeof body === 'string') {
    // Shown, never hidden: a reader sees that this row is damaged; verify names it.
    return {
      id: row.id, seq: row.seq, time: new Date(Number(row.time)).toISOString(), orgId: row.org_id,
      actor: { type: row.actor_type, id: row.actor_id }, action: row.action,
      target: row.target_type === null ? null : { type: row.target_type, id: row.target_id ?? '' },
      ip: null, userAgent: null, outcome: row.outcome, details: { damaged: body }, requestId: row.request_id,
      prevHash: row.prev_hash, hash: row.hash,
    };
  }
  return { ...body, prevHash: row.prev_hash, hash: row.hash };
}

function checkRow(row: AuditEventRow, prevHash: string, keys: AuditOpeningKeys): string | null {
  if (row.prev_hash !== prevHash) return `prevHash does not link to event ${row.seq - 1}`;
  const body = toBody(row, keys);
  if (typeof body === 'string') return body;
  if (chainHash(prevHash, body) !== row.hash) return "the hash does not match the event's content";
  if (row.user_id !== concernedUser(body)) return 'the user column does not match the event';
  return null;
}
