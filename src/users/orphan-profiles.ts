import type { PiiService } from '../pii/pii-service.js';
import type { UserRepository } from '../store/repositories/users.js';

/** A profile without an account this old is a leftover of a crash, not a signup or import in flight. */
export const ORPHAN_AGE_MS = 10 * 60_000;

/**
 * Whether an account may be created for `email`, before its profile is written.
 * Account creation writes the profile (PII store) before the account (main store):
 * the two stores share no transaction, and a crash in between leaves a profile
 * without an account. Such a profile must not hold the address forever:
 *  - 'account': an account has the address;
 *  - 'in_flight': only a profile younger than ORPHAN_AGE_MS, which may belong to a
 *    signup or import still writing its account;
 *  - 'free': no profile, or an older one without an account, deleted here.
 */
export async function claimAddress(pii: PiiService, users: UserRepository, now: number, email: string): Promise<'free' | 'account' | 'in_flight'> {
  const existing = await pii.findByEmail(email);
  if (!existing) return 'free';
  if (await users.findById(existing.userId)) return 'account';
  if (now - existing.createdAt < ORPHAN_AGE_MS) return 'in_flight';
  await pii.deleteProfile(existing.userId);
  return 'free';
}

const SWEEP_BATCH = 500;

/**
 * Deletes every profile left without an account for ORPHAN_AGE_MS or longer: a
 * signup or import killed between its two stores, and above all an account
 * deletion killed (or refused by a PII store outage) after its main-store step,
 * whose personal data must not outlive the account. Younger profiles may belong
 * to an account still being written and are left. Returns how many were deleted.
 */
export async function sweepOrphanProfiles(pii: PiiService, users: UserRepository, now: number): Promise<number> {
  let deleted = 0;
  let after = '';
  for (;;) {
    const batch = await pii.profileIdsCreatedBefore(now - ORPHAN_AGE_MS, after, SWEEP_BATCH);
    if (batch.length === 0) return deleted;
    const accounts = new Set(await users.existingIds(batch));
    for (const userId of batch) {
      if (accounts.has(userId)) continue;
      await pii.deleteProfile(userId);
      deleted++;
    }
    after = batch[batch.length - 1]!;
  }
}
