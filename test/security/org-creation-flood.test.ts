/**
 * Threat: resource exhaustion through organizations. Anyone may sign up, and any
 * signed-in account could create organizations without end: each one a row, an
 * owner membership, audit events and a policy every login of that user resolves.
 * A script fills the store. Now an account owns at most MAX_ORGS_PER_USER orgs
 * (ASVS V2.4.1); past it `409 org_limit_reached` and nothing is written. The count
 * and the insert share one transaction, so concurrent creations at the limit
 * cannot both pass (PostgreSQL: the user's row is locked for the count).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { captureEvents, uniqueSlug } from '../helpers/orgs.js';

const LIMIT = 3;

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`organizations one account may own are capped (${store})`, () => {
    let t: TestServer;
    let events: ReturnType<typeof captureEvents>;
    before(async () => {
      t = await startTestServer({ store, env: { MAX_ORGS_PER_USER: String(LIMIT) } });
      events = captureEvents(t);
    });
    after(async () => {
      await t.close();
    });

    const ownedBy = async (userId: string) => Number((await t.server.services.stores.main.db
      .selectFrom('org_memberships').select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('user_id', '=', userId).where('role', '=', 'owner').executeTakeFirstOrThrow()).n);

    test('past the cap: 409 org_limit_reached as a problem, nothing written; other accounts unaffected', async () => {
      const user = await signUp(t, 'org-flood');
      for (let i = 0; i < LIMIT; i++) {
        const created = await user.client.post('/v1/orgs', { name: `Flood ${i}`, slug: uniqueSlug('flood') });
        assert.equal(created.status, 201, created.text);
      }
      const slug = uniqueSlug('flood-over');
      const refused = await user.client.post('/v1/orgs', { name: 'One too many', slug });
      assert.equal(refused.status, 409, refused.text);
      assert.equal(refused.headers['content-type'], 'application/problem+json; charset=utf-8');
      assert.equal(refused.body.code, 'org_limit_reached');
      assert.equal(refused.body.status, 409);
      assert.match(refused.body.detail, new RegExp(`at most ${LIMIT}`));
      const db = t.server.services.stores.main.db;
      assert.equal(await db.selectFrom('orgs').select('id').where('slug', '=', slug).executeTakeFirst(), undefined, 'no org row');
      assert.ok(!events.some((e) => e.action === 'org.created' && e.details?.['slug'] === slug), 'no org.created event');
      assert.equal(await ownedBy(user.userId), LIMIT);
      assert.equal((await user.client.get('/v1/session')).body.orgs.length, LIMIT);

      const other = await signUp(t, 'org-other');
      assert.equal((await other.client.post('/v1/orgs', { name: 'Other', slug: uniqueSlug('other') })).status, 201);
    });

    test('memberships in orgs the account does not own do not count', async () => {
      const owner = await signUp(t, 'org-host');
      const guest = await signUp(t, 'org-guest');
      for (let i = 0; i < LIMIT; i++) {
        const created = await owner.client.post('/v1/orgs', { name: `Host ${i}`, slug: uniqueSlug('host') });
        await t.server.services.orgs.addMember(created.body.org.id, guest.userId, 'admin', { type: 'system', id: null });
      }
      for (let i = 0; i < LIMIT; i++) {
        assert.equal((await guest.client.post('/v1/orgs', { name: `Own ${i}`, slug: uniqueSlug('own') })).status, 201);
      }
      assert.equal((await guest.client.post('/v1/orgs', { name: 'Over', slug: uniqueSlug('own') })).body.code, 'org_limit_reached');
    });

    test('concurrent creations at the limit: exactly one passes', async () => {
      const user = await signUp(t, 'org-race');
      for (let i = 0; i < LIMIT - 1; i++) {
        assert.equal((await user.client.post('/v1/orgs', { name: `Race ${i}`, slug: uniqueSlug('race') })).status, 201);
      }
      // Six warm keep-alive connections first, so the six creations arrive together (not one TLS handshake apart).
      await Promise.all(Array.from({ length: 6 }, () => user.client.get('/v1/session')));
      const answers = await Promise.all(Array.from({ length: 6 }, (_, i) =>
        user.client.post('/v1/orgs', { name: `Racer ${i}`, slug: uniqueSlug('racer') })));
      const statuses = answers.map((response) => response.status).sort();
      assert.deepEqual(statuses, [201, 409, 409, 409, 409, 409], answers.map((r) => r.text).join('\n'));
      assert.ok(answers.filter((r) => r.status === 409).every((r) => r.body.code === 'org_limit_reached'));
      assert.equal(await ownedBy(user.userId), LIMIT);
    });

    test('concurrent creations at the limit through the service (no HTTP in between): exactly one passes', async () => {
      const user = await signUp(t, 'org-race-svc');
      for (let i = 0; i < LIMIT - 1; i++) {
        assert.equal((await user.client.post('/v1/orgs', { name: `Race ${i}`, slug: uniqueSlug('race') })).status, 201);
      }
      const meta = { ip: '127.0.0.1', userAgent: 'race' };
      const outcomes = await Promise.allSettled(Array.from({ length: 6 }, (_, i) =>
        t.server.services.orgs.createOrg(user.userId, { name: `Racer ${i}`, slug: uniqueSlug('racer') }, meta)));
      assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected') assert.equal((outcome.reason as { code?: string }).code, 'org_limit_reached', String(outcome.reason));
      }
      assert.equal(await ownedBy(user.userId), LIMIT);
    });
  });
}
