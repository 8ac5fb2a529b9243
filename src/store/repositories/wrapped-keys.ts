import type { Kysely } from 'kysely';
import type { KeyProvider } from '../../crypto/key-provider.js';
import { wrappingKeyId } from '../../crypto/key-provider.js';

/**
 * One column that holds keys wrapped by the master key. Master key rotation
 * walks every registered column: it re-wraps what an older master key wrapped,
 * and before an old key is retired it proves nothing still needs it.
 */
export interface WrappedKeyColumn {
  readonly name: string;
  /** How many values each master key id wraps. */
  countByKeyId(): Promise<Map<string, number>>;
  /** Re-wraps every value not wrapped by the provider's current key; returns how many changed. */
  rewrap(provider: KeyProvider, onProgress?: (done: number) => void): Promise<number>;
}

export interface WrappedColumnSpec {
  table: string;
  /** Primary-key column (single, text or integer) used for keyset paging. */
  keyColumn: string;
  /** Extra columns the AAD needs; with the key column they identify a row (at most one). */
  extraColumns?: [string] | [];
  column: string;
  aad(row: Record<string, unknown>): string;
}

const BATCH = 500;

export function wrappedKeyColumn(db: Kysely<any>, spec: WrappedColumnSpec): WrappedKeyColumn {
  const columns = [spec.keyColumn, spec.column, ...(spec.extraColumns ?? [])];

  async function* rows(): AsyncGenerator<Record<string, unknown>> {
    // Keyset paging on the row's whole identity: the key column, then the extra columns
    // (the keyring holds several versions of one purpose).
    const identity = [spec.keyColumn, ...(spec.extraColumns ?? [])];
    let after: Record<string, unknown> | null = null;
    for (;;) {
      let query = db.selectFrom(spec.table).select(columns).where(spec.column, 'is not', null);
      for (const column of identity) query = query.orderBy(column);
      query = query.limit(BATCH);
      const last = after;
      if (last !== null) {
        query = identity.length === 1
          ? query.where(spec.keyColumn, '>', last[spec.keyColumn])
          : query.where((eb) => eb(eb.refTuple(identity[0]!, identity[1]!), '>', eb.tuple(last[identity[0]!], last[identity[1]!])));
      }
      const batch = (await query.execute()) as Array<Record<string, unknown>>;
      for (const row of batch) yield row;
      if (batch.length < BATCH) return;
      after = batch[batch.length - 1]!;
    }
  }

  return {
    name: `${spec.table}.${spec.column}`,
    async countByKeyId() {
      const counts = new Map<string, number>();
      for await (const row of rows()) {
        const id = wrappingKeyId(String(row[spec.column])) ?? '(unknown)';
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      return counts;
    },
    async rewrap(provider, onProgress) {
      let changed = 0;
      for await (const row of rows()) {
        const wrapped = String(row[spec.column]);
        if (wrappingKeyId(wrapped) === provider.currentKeyId) continue;
        const aad = spec.aad(row);
        const key = await provider.unwrap(wrapped, aad);
        if (!key) throw new Error(`${spec.table}.${spec.column}: the value of ${String(row[spec.keyColumn])} does not unwrap`);
        // Compare-and-set: only replace the exact value read, so a concurrent writer wins.
        let update = db.updateTable(spec.table)
          .set({ [spec.column]: await provider.wrap(key, aad) })
          .where(spec.keyColumn, '=', row[spec.keyColumn])
          .where(spec.column, '=', wrapped);
        // The whole row's identity (a keyring row is a purpose and a version).
        for (const extra of spec.extraColumns ?? []) update = update.where(extra, '=', row[extra]);
        await update.execute();
        changed++;
        onProgress?.(changed);
      }
      return changed;
    },
  };
}
