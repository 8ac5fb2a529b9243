import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { hmacSha256 } from '../../src/crypto/hash.js';
import { formatApiToken } from '../../src/sdk/api-token-format.js';
import { randomBytes, randomId } from '../../src/crypto/random.js';
import { rampartWith } from '../helpers/cli.js';
import { signUp, startTestServer, type StoreKind, type TestServer } from '../helpers/harness.js';
import { enrollTOTP, passwordStep, stepUp } from '../helpers/mfa.js';
import { Resources } from '../helpers/resources.js';

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` }, noCookies: true });

for (const store of ['sqlite', 'postgres'] as const satisfies readonly StoreKind[]) {
  describe(`HMAC purpose key rotation on ${store} (rampart keys rotate-hmac / retire-hmac)`, () => {
    let t: TestServer;
    const open = new Resources();
    before(async () => {
      t = open.add(await startTestServer({ store }), (server) => server.close());
    });
    after(() => open.close());

    const db = () => t.server.services.stores.main.db;
    const versionsOf = async (purpose: string) => (await db().selectFrom('keyring').select('version').where('purpose', '=', purpose).orderBy('version').execute()).map((row) => Number(row.version));
    /** As if the rotation happened three minutes ago: every server has read it by then (the command waits two). */
    const settle = (purpose: string, version: number) => db().updateTable('keyring').set({ created_at: Date.now() - 3 * 60_000 }).where('purpose', '=', purpose).where('version', '=', version).execute();
    const events = async (action: string) => (await t.server.services.audit.latest({ limit: 200 })).events.filter((event) => event.action === action);
    const createToken = async (client: Awaited<ReturnType<typeof signUp>>['client'], name: string) => {
      const created = await client.post('/v1/me/tokens', { name, scopes: ['profile:read'] });
      assert.equal(created.status, 201, created.text);
      return created.body as { id: string; token: string };
    };
    const tokenWorks = async (token: string) => (await t.client().get('/v1/session', bearer(token))).status;
    const storedHash = async (id: string) => (await db().selectFrom('api_tokens').select('token_hash').where('id', '=', id).executeTakeFirstOrThrow()).token_hash;

    test('api-token: tokens issued before a rotation keep working on a running server, new ones go under the new version, another instance\'s new token is found, and retiring revokes only on request', async () => {
      const alice = await signUp(t, 'hmac-alice');
      const before = await createToken(alice.client, 'before');
      const revokedBefore = await createToken(alice.client, 'revoked-before');
      assert.equal((await alice.client.delete(`/v1/me/tokens/${revokedBefore.id}`)).status, 204);
      const v1 = (await t.server.services.keyring.keyAt('api-token', 1))!;
      assert.equal(await storedHash(before.id), hmacSha256(v1, before.token), 'version 1 is the bare HMAC');

      const rotated = await rampartWith(t.env, 'keys', 'rotate-hmac', 'api-token');
      assert.equal(rotated.code, 0, rotated.stderr);
      assert.match(rotated.stdout, /^api-token HMAC key rotated: version 2; running servers take it within a minute; what is stored under older versions keeps working until `rampart keys retire-hmac api-token`\n$/);
      assert.deepEqual(await versionsOf('api-token'), [1, 2]);
      const v2 = (await t.server.services.keyring.keyAt('api-token', 2))!;
      assert.deepEqual((await events('hmac_key.rotated')).map((event) => event.details), [{ purpose: 'api-token', version: 2 }]);

      // Another instance that already read version 2 issued a token (this server still holds only
      // version 1): its first miss re-reads the versions and finds it.
      await sleep(1_100);
      const elsewhere = formatApiToken(randomBytes(32));
      const now = t.clock.now();
      await db().insertInto('api_tokens').values({
        id: randomId('tok'), token_hash: `k2.${hmacSha256(v2, elsewhere)}`, user_id: alice.userId, org_id: null, name: 'elsewhere',
        scopes: 'profile:read', prefix: elsewhere.slice(0, 9), created_at: now, expires_at: now + 86_400_000,
        last_used_at: null, last_used_ip_enc: null, revoked_at: null, revoked_reason: null,
      }).execute();
      assert.equal(await tokenWorks(elsewhere), 200, 'a token under a version this server had not read yet');
      assert.equal(await tokenWorks(before.token), 200, 'a token under version 1 keeps working');
      assert.equal(await tokenWorks(revokedBefore.token), 401);
      const afterRotation = await createToken(alice.client, 'after');
      assert.equal(await storedHash(afterRotation.id), `k2.${hmacSha256(v2, afterRotation.token)}`, 'new tokens go under version 2');
      assert.equal(await tokenWorks(afterRotation.token), 200);
      assert.equal(await tokenWorks(formatApiToken(randomBytes(32))), 401, 'a made-up token is still refused');

      const early = await rampartWith(t.env, 'keys', 'retire-hmac', 'api-token');
      assert.equal(early.code, 1);
      assert.match(early.stderr, /^rampart: nothing retired: version 2 is less than 2 minutes old/);
      await settle('api-token', 2);
      const held = await rampartWith(t.env, 'keys', 'retire-hmac', 'api-token');
      assert.equal(held.code, 1, held.stdout);
      assert.equal(held.stderr, 'rampart: nothing retired: 1 live API token still under an older version; wait for them to expire or be replaced, or pass --revoke-remaining to revoke them\n',
        'the revoked token does not hold the key; the live one does');
      assert.deepEqual(await versionsOf('api-token'), [1, 2], 'nothing changed');
      assert.equal(await tokenWorks(before.token), 200);

      // An expired token does not hold the key either.
      await db().updateTable('api_tokens').set({ expires_at: t.clock.now() + 1_000 }).where('id', '=', before.id).execute();
      t.clock.advance(2_000);
      const retiredExpired = await rampartWith(t.env, 'keys', 'retire-hmac', 'api-token');
      assert.equal(retiredExpired.code, 0, retiredExpired.stderr);
      assert.equal(retiredExpired.stdout, 'api-token HMAC key versions retired: 1; version 2 is the only one left\n');
      assert.deepEqual(await versionsOf('api-token'), [2]);
      assert.equal(await tokenWorks(afterRotation.token), 200);
      assert.equal(await tokenWorks(elsewhere), 200);
    });

    test('api-token: after a leak, --revoke-remaining revokes the live tokens under older versions with the key, and records why', async () => {
      const bob = await signUp(t, 'hmac-bob');
      const old = await createToken(bob.client, 'old');
      const rotated = await rampartWith(t.env, 'keys', 'rotate-hmac', 'api-token');
      assert.equal(rotated.code, 0, rotated.stderr);
      const version = Math.max(...(await versionsOf('api-token')));
      const fresh = await createToken(bob.client, 'fresh');
      assert.match(await storedHash(fresh.id), new RegExp(`^k${version}\\.`));
      await settle('api-token', version);
      const retired = await rampartWith(t.env, 'keys', 'retire-hmac', 'api-token', '--revoke-remaining');
      assert.equal(retired.code, 0, retired.stderr);
      // Bob's old token and the two live ones of the test before (under version 2, older now).
      assert.equal(retired.stdout, `api-token HMAC key versions retired: ${version - 1}; version ${version} is the only one left; 3 API tokens revoked\n`);
      assert.deepEqual(await versionsOf('api-token'), [version]);
      assert.equal(await tokenWorks(old.token), 401, 'the token under the retired key is revoked');
      assert.equal(await tokenWorks(fresh.token), 200);
      const listed = (await bob.client.get('/v1/me/tokens')).body.tokens.map((token: { id: string }) => token.id);
      assert.deepEqual(listed, [fresh.id], 'the owner sees it gone');
      const revocation = (await events('api_token.revoked')).find((event) => event.target?.id === old.id);
      assert.deepEqual(revocation?.details, { reason: 'key_retired', userId: bob.userId });
      assert.deepEqual((await events('hmac_key.retired')).find((event) => event.details['current'] === version)?.details, { purpose: 'api-token', versions: [version - 1], current: version, revokedTokens: 3, revokedRecoveryCodes: 0 });
    });

    test('recovery-code: codes issued before a rotation keep working, new sets go under the new version, retiring refuses while unused old codes exist and deletes them on request', async () => {
      const carol = await signUp(t, 'hmac-carol');
      const dave = await signUp(t, 'hmac-dave');
      const carolMfa = await enrollTOTP(t, carol.client, carol.password);
      const daveMfa = await enrollTOTP(t, dave.client, dave.password);
      const rotated = await rampartWith(t.env, 'keys', 'rotate-hmac', 'recovery-code');
      assert.equal(rotated.code, 0, rotated.stderr);
      const version = Math.max(...(await versionsOf('recovery-code')));
      assert.equal(version, 2);

      // A code of the old set completes a login on the running server.
      const step = await passwordStep(t.client(), carol.email, carol.password);
      const viaOld = await t.client().post('/v1/login/mfa', { mfaToken: step.mfaToken, recoveryCode: carolMfa.recoveryCodes[0] });
      assert.equal(viaOld.status, 200, viaOld.text);
      // Dave replaces his set: the new one is under version 2 and works.
      await stepUp(dave.client, dave.password);
      const regenerated = await dave.client.post('/v1/me/mfa/recovery-codes');
      assert.equal(regenerated.status, 200, regenerated.text);
      const daveCodes: string[] = regenerated.body.recoveryCodes;
      const daveRows = await db().selectFrom('mfa_recovery_codes').select('code_hash').where('user_id', '=', dave.userId).execute();
      assert.equal(daveRows.length, 10);
      for (const row of daveRows) assert.match(row.code_hash, /^k2\./);
      const daveStep = await passwordStep(t.client(), dave.email, dave.password);
      assert.equal((await t.client().post('/v1/login/mfa', { mfaToken: daveStep.mfaToken, recoveryCode: daveMfa.recoveryCodes[1] })).status, 401, 'his old set died');
      const daveStep2 = await passwordStep(t.client(), dave.email, dave.password);
      assert.equal((await t.client().post('/v1/login/mfa', { mfaToken: daveStep2.mfaToken, recoveryCode: daveCodes[0] })).status, 200);

      await settle('recovery-code', 2);
      const held = await rampartWith(t.env, 'keys', 'retire-hmac', 'recovery-code');
      assert.equal(held.code, 1);
      assert.equal(held.stderr, 'rampart: nothing retired: 9 unused recovery codes of 1 user still under an older version; wait for them to expire or be replaced, or pass --revoke-remaining to revoke them\n');
      assert.equal((await carol.client.get('/v1/me/mfa')).body.recoveryCodesLeft, 9);

      const retired = await rampartWith(t.env, 'keys', 'retire-hmac', 'recovery-code', '--revoke-remaining');
      assert.equal(retired.code, 0, retired.stderr);
      assert.equal(retired.stdout, 'recovery-code HMAC key versions retired: 1; version 2 is the only one left; 9 recovery codes of 1 user deleted (they generate a new set)\n');
      assert.equal((await carol.client.get('/v1/me/mfa')).body.recoveryCodesLeft, 0, 'Carol\'s old codes are gone; she generates a new set');
      assert.equal((await dave.client.get('/v1/me/mfa')).body.recoveryCodesLeft, 9, 'Dave\'s set under version 2 is untouched');
      const revoked = (await events('recovery_codes.revoked')).find((event) => event.target?.id === carol.userId);
      assert.deepEqual(revoked?.details, { reason: 'key_retired', count: 9 });
      const daveStep3 = await passwordStep(t.client(), dave.email, dave.password);
      assert.equal((await t.client().post('/v1/login/mfa', { mfaToken: daveStep3.mfaToken, recoveryCode: daveCodes[1] })).status, 200);
    });

    test('rate-limit and login-throttle: rotated and retired without a wait for anything but running servers; logins and limits keep working', async () => {
      const erin = await signUp(t, 'hmac-erin');
      for (const purpose of ['rate-limit', 'login-throttle']) {
        const rotated = await rampartWith(t.env, 'keys', 'rotate-hmac', purpose);
        assert.equal(rotated.code, 0, rotated.stderr);
        assert.equal(rotated.stdout, `${purpose} HMAC key rotated: version 2; running servers take it within a minute; its counters start afresh\n`);
        await settle(purpose, 2);
        const retired = await rampartWith(t.env, 'keys', 'retire-hmac', purpose);
        assert.equal(retired.code, 0, retired.stderr);
        assert.equal(retired.stdout, `${purpose} HMAC key versions retired: 1; version 2 is the only one left\n`);
        assert.deepEqual(await versionsOf(purpose), [2]);
        const again = await rampartWith(t.env, 'keys', 'retire-hmac', purpose);
        assert.equal(again.stdout, `nothing to retire: version 2 is the only ${purpose} HMAC key\n`);
      }
      // The running server still holds version 1 in memory until its next read; both work.
      const login = await t.client().post('/v1/login', { email: erin.email, password: erin.password });
      assert.equal(login.status, 200, login.text);
      assert.ok(login.headers['ratelimit-limit'] ?? login.headers['ratelimit-policy'], 'rate limits still answer');
      const unknown = await rampartWith(t.env, 'keys', 'rotate-hmac', 'csrf');
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /value 'csrf' is invalid for argument 'purpose'\. Allowed choices are api-token, recovery-code, rate-limit, login-throttle/);
    });
  });
}
