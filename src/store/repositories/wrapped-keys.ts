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
  /** Extra columns the AAD needs. */
  extraColumns?: string[];
  column: string;
  aad(row: Record<string, unknown>): string;
}

const BATCH = 500;

export function wrappedKeyColumn(db: Kysely<any>, spec: WrappedColumnSpec): WrappedKeyColumn {
  const columns = [spec.keyColumn, spec.column, ...(spec.extraColumns ?? [])];

  async function* rows(): AsyncGenerator<Record<string, unknown>> {
    let after: unknown = null;
    for (;;) {
      let query = db.selectFrom(spec.table).select(columns).where(spec.column, 'is not', null).orderBy(spec.keyColumn).limit(BATCH);
      if (after !== null) query = query.where(spec.keyColumn, '>', after);
      const batch = (await query.execute()) as Array<Record<string, unknown>>;
      for (const row of batch) yield row;
      if (batch.length < BATCH) return;
      after = batch[batch.length - 1]![spec.keyColumn];
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
        await db.updateTable(spec.table)
          .set({ [spec.column]: await provider.wrap(key, aad) })
          .where(spec.keyColumn, '=', row[spec.keyColumn])
          .where(spec.column, '=', wrapped)
          .execute();
        changed++;
        onProgress?.(changed);
      }
      return changed;
    },
  };
}
