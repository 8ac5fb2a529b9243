/**
 * Threat: an account deletion removes the account (main store) and then dies, or meets
 * a PII store outage, before it deletes the profile: the deleted user's email, name and
 * data key stay in the PII store with nothing left to ever remove them (the right to
 * erasure, and crypto-shredding, silently broken). Signups and imports killed between
 * their two stores leave such profiles too.
 *
 * Property: the hourly sweep deletes every profile that has had no account for 10
 * minutes, and nothing else: not a profile with an account, not a young one that may
 * belong to an account still being written. SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { randomId } from '../../src/crypto/random.js';
import { ORPHAN_AGE_MS, sweepOrphanProfiles } from '../../src/users/orphan-profiles.js';
import { uniqueEmail } from '../helpers/harness.js';
import { startTestServices, type TestServices } from '../helpers/services.js';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`profiles left without an account are swept (${store})`, () => {
    let s: TestServices;
    before(async () => {
      s = await startTestServices({ store });
    });
    after(() => s.close());

    async function account(label: string): Promise<string> {
      const userId = randomId('usr');
      await s.services.pii.createProfile(userId, uniqueEmail(label), 'Some One');
      const now = s.clock.now();
      await s.services.users.insert({
        id: userId, status: 'active', password_hash: '$argon2id$unused', password_changed_at: now,
        email_verified: 0, mfa_enabled: 0, created_at: now, updated_at: now,
      });
      return userId;
    }

    const hasProfile = async (userId: string) => (await s.services.stores.pii.db.selectFrom('pii_users').select('user_id').where('user_id', '=', userId).executeTakeFirst()) !== undefined;
    const sweep = () => sweepOrphanProfiles(s.services.pii, s.services.users, s.clock.now());

    test('a deletion interrupted after the account went: its profile is deleted by the sweep; accounts and young profiles stay', async () => {
      const { services, clock } = s;
      const kept = await account('kept');
      const deleted = await account('interrupted');
      // The PII store refuses the second step once (an outage, or the process dying there).
      const deleteProfile = services.pii.deleteProfile.bind(services.pii);
      services.pii.deleteProfile = async () => {
        throw new Error('PII store unavailable');
      };
      try {
        // The account is gone once its transaction commits: the deletion answers success, not an error.
        await services.accounts.delete(deleted, { type: 'system', id: null }, null);
      } finally {
        services.pii.deleteProfile = deleteProfile;
      }
      assert.equal(await services.users.findById(deleted), undefined, 'the account is gone');
      assert.equal(await hasProfile(deleted), true, 'its profile is left behind');

      // A signup still writing its account: a profile created just now.
      clock.advance(ORPHAN_AGE_MS);
      const inFlight = randomId('usr');
      await services.pii.createProfile(inFlight, uniqueEmail('in-flight'), null);

      assert.equal(await sweep(), 1);
      assert.equal(await hasProfile(deleted), false, "the deleted account's personal data is gone");
      assert.equal(await hasProfile(kept), true, 'a profile with an account stays');
      assert.equal(await hasProfile(inFlight), true, 'a young profile stays');
      assert.equal((await services.pii.getProfile(kept))?.name, 'Some One');

      // Ten minutes on, the young one has had no account long enough.
      clock.advance(ORPHAN_AGE_MS);
      assert.equal(await sweep(), 1);
      assert.equal(await hasProfile(inFlight), false);
      assert.equal(await hasProfile(kept), true);
      assert.equal(await sweep(), 0);
    });

    test('the sweep walks past one batch of profiles', async () => {
      const { services, clock } = s;
      const orphans = Array.from({ length: 520 }, () => randomId('usr'));
      for (let i = 0; i < orphans.length; i += 100) {
        await Promise.all(orphans.slice(i, i + 100).map((id) => services.pii.createProfile(id, uniqueEmail('batch'), null)));
      }
      const kept = await account('batch-kept');
      clock.advance(ORPHAN_AGE_MS);
      assert.equal(await sweep(), orphans.length);
      assert.equal(await hasProfile(kept), true);
    });
  });
}
