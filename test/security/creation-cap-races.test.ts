/**
 * Threat: racing past a per-owner creation cap. A user holds at most
 * MAX_LIVE_TOKENS_PER_USER live API tokens and an org at most MAX_WEBHOOKS_PER_ORG
 * webhooks (ASVS V2.1.3). Each creation counts the owner's rows and then inserts,
 * in one transaction. On PostgreSQL at READ COMMITTED that alone does not hold: an
 * attacker one below the cap fires ten creations at once, every transaction counts
 * the same number before any commits, and all ten insert. Now the owner's row (the
 * user for tokens, the org for webhooks) is locked FOR UPDATE before the count, so
 * the creations queue and exactly one passes. SQLite transactions serialize anyway.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAX_LIVE_TOKENS_PER_USER } from '../../src/tokens/api-token-service.js';
import { MAX_WEBHOOKS_PER_ORG } from '../../src/webhooks/webhook-service.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { stepUp, uniqueSlug } from '../helpers/orgs.js';

/** Enough at once that on PostgreSQL, without the lock, several transactions count before any inserts. */
const RACERS = 10;
const meta = { ip: '127.0.0.1', userAgent: 'race' };
// Webhooks go to a loopback address that is never called (no event they subscribe to is raised here).
const ENV = { RAMPART_INSECURE_WEBHOOKS_TO_PRIVATE_NETWORKS: 'true', JOB_POLL_INTERVAL_MS: '3600000' };
const HOOK = { url: 'http://127.0.0.1:9/hooks/rampart', events: ['member.added'] };

/** Exactly one fulfilled; every other outcome is the cap's refusal. */
function assertOnePassed(outcomes: Array<PromiseSettledResult<unknown>>, code: string): void {
  assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1, outcomes.map((o) => o.status === 'rejected' ? String(o.reason) : 'ok').join('\n'));
  for (const outcome of outcomes) {
    if (outcome.status === 'rejected') assert.equal((outcome.reason as { code?: string }).code, code, String(outcome.reason));
  }
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`per-owner creation caps hold under concurrent creations (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store, env: ENV });
    });
    after(async () => {
      await t.close();
    });

    const db = () => t.server.services.stores.main.db;
    const liveTokensOf = async (userId: string) => Number((await db().selectFrom('api_tokens')
      .select((eb) => eb.fn.countAll<number | string>().as('n')).where('user_id', '=', userId).where('revoked_at', 'is', null)
      .executeTakeFirstOrThrow()).n);
    const hooksOf = async (orgId: string) => Number((await db().selectFrom('webhooks')
      .select((eb) => eb.fn.countAll<number | string>().as('n')).where('org_id', '=', orgId).executeTakeFirstOrThrow()).n);

    async function userOneTokenBelowCap(label: string) {
      const user = await signUp(t, label);
      for (let i = 0; i < MAX_LIVE_TOKENS_PER_USER - 1; i++) {
        await t.server.services.apiTokens.create({ userId: user.userId, name: `fill ${i}`, scopes: ['profile:read'] }, meta);
      }
      return user;
    }

    async function orgOneWebhookBelowCap(label: string) {
      const owner = await signUp(t, label);
      const created = await owner.client.post('/v1/orgs', { name: 'Hooks', slug: uniqueSlug(label) });
      assert.equal(created.status, 201, created.text);
      const orgId: string = created.body.org.id;
      const actor = { type: 'user' as const, id: owner.userId };
      for (let i = 0; i < MAX_WEBHOOKS_PER_ORG - 1; i++) await t.server.services.webhooks.create(orgId, actor, HOOK, meta);
      return { owner, orgId, actor };
    }

    test('API tokens: concurrent creations at the limit through the service, exactly one passes', async () => {
      const user = await userOneTokenBelowCap('token-race-svc');
      const outcomes = await Promise.allSettled(Array.from({ length: RACERS }, (_, i) =>
        t.server.services.apiTokens.create({ userId: user.userId, name: `racer ${i}`, scopes: ['profile:read'] }, meta)));
      assertOnePassed(outcomes, 'token_limit_reached');
      assert.equal(await liveTokensOf(user.userId), MAX_LIVE_TOKENS_PER_USER);
    });

    test('API tokens: concurrent creations at the limit over HTTPS, one 201 and the rest 409 token_limit_reached', async () => {
      const user = await userOneTokenBelowCap('token-race-http');
      // Warm keep-alive connections first, so the creations arrive together (not one TLS handshake apart).
      await Promise.all(Array.from({ length: RACERS }, () => user.client.get('/v1/session')));
      const answers = await Promise.all(Array.from({ length: RACERS }, (_, i) =>
        user.client.post('/v1/me/tokens', { name: `racer ${i}`, scopes: ['profile:read'] })));
      const statuses = answers.map((response) => response.status).sort();
      assert.deepEqual(statuses, [201, ...Array<number>(RACERS - 1).fill(409)], answers.map((r) => r.text).join('\n'));
      assert.ok(answers.filter((r) => r.status === 409).every((r) => r.body.code === 'token_limit_reached'));
      assert.equal(await liveTokensOf(user.userId), MAX_LIVE_TOKENS_PER_USER);
    });

    test('webhooks: concurrent creations at the limit through the service, exactly one passes', async () => {
      const { orgId, actor } = await orgOneWebhookBelowCap('hook-race-svc');
      const outcomes = await Promise.allSettled(Array.from({ length: RACERS }, () => t.server.services.webhooks.create(orgId, actor, HOOK, meta)));
      assertOnePassed(outcomes, 'webhook_limit_reached');
      assert.equal(await hooksOf(orgId), MAX_WEBHOOKS_PER_ORG);
    });

    test('webhooks: concurrent creations at the limit over HTTPS, one 201 and the rest 409 webhook_limit_reached', async () => {
      const { owner, orgId } = await orgOneWebhookBelowCap('hook-race-http');
      await stepUp(owner);
      await Promise.all(Array.from({ length: RACERS }, () => owner.client.get('/v1/session')));
      const answers = await Promise.all(Array.from({ length: RACERS }, () => owner.client.post(`/v1/orgs/${orgId}/webhooks`, HOOK)));
      const statuses = answers.map((response) => response.status).sort();
      assert.deepEqual(statuses, [201, ...Array<number>(RACERS - 1).fill(409)], answers.map((r) => r.text).join('\n'));
      assert.ok(answers.filter((r) => r.status === 409).every((r) => r.body.code === 'webhook_limit_reached'));
      assert.equal(await hooksOf(orgId), MAX_WEBHOOKS_PER_ORG);
    });
  });
}
