import type { Kysely } from 'kysely';
import { parseStoredPolicy } from '../orgs/policy-document.js';
import type { MainDB } from '../store/schema.js';
import type { LiveFacts } from './questionnaire.js';

/** Counts over the organizations' policies, streamed in pages (constant memory). */
export async function gatherLiveFacts(db: Kysely<MainDB>): Promise<LiveFacts> {
  const facts: LiveFacts = { orgCount: 0, orgsRequiringMfa: 0, orgsWithIpAllowlist: 0, orgsWithPasswordExpiry: 0 };
  let after = '';
  for (;;) {
    const rows = await db.selectFrom('orgs').select(['id', 'policy']).where('id', '>', after).orderBy('id').limit(500).execute();
    for (const row of rows) {
      const policy = parseStoredPolicy(row.policy);
      facts.orgCount++;
      if (policy.mfa.required) facts.orgsRequiringMfa++;
      if (policy.network.ipAllowlist.length > 0) facts.orgsWithIpAllowlist++;
      if (policy.password.maxAgeDays !== null) facts.orgsWithPasswordExpiry++;
    }
    if (rows.length < 500) return facts;
    after = rows[rows.length - 1]!.id;
  }
}
