import { Argument, Command } from 'commander';
import { AUDIT_KEY_PURPOSE } from '../audit/field-keys.js';
import { ROTATING_HMAC_PURPOSES, type RotatingHmacPurpose } from '../crypto/hmac-key-rotation.js';
import { KEY_RETIRE_AFTER_MS } from '../crypto/hmac-key-versions.js';
import type { EventAction } from '../events/catalogue.js';
import type { Services } from '../services.js';
import { CSRF_KEY_PURPOSE } from '../sessions/session-service.js';
import { action, withCommonOptions, withServices } from './common.js';
import { rotateMasterCommand } from './keys-master.js';

/**
 * Adds a version of a main-store purpose key with the event that records it, in one
 * transaction (together or not at all); running servers take it within a minute.
 */
async function rotatePurposeKey(services: Services, purpose: string, action: EventAction, targetType: string): Promise<number> {
  return services.stores.main.db.transaction().execute(async (trx) => {
    const added = await services.keyring.rotate(purpose, trx);
    await services.events.record({
      action, actor: { type: 'system', id: null }, target: { type: targetType, id: String(added) },
      origin: { ip: null, userAgent: null }, outcome: 'success', details: { version: added },
    }, trx);
    return added;
  });
}

/** The HMAC keys that keep verifiers (the others only name counters). */
const VERIFIER_PURPOSES: ReadonlySet<RotatingHmacPurpose> = new Set(['api-token', 'recovery-code']);

/**
 * `rampart keys rotate`: a new access-token signing key takes over at once.
 * Tokens signed by the old key stay valid until they expire (its public key
 * stays in the JWKS until then); its private key is destroyed now. Running
 * servers pick the new key up within a minute. Use it on a schedule of your own
 * or after a suspected compromise; the server also rotates every
 * SIGNING_KEY_ROTATION_DAYS.
 */
export function keysCommand(): Command {
  const keys = new Command('keys').description('manage key material');
  keys.addCommand(
    withCommonOptions(new Command('rotate'))
      .description('rotate the access-token signing key now (old public keys stay in the JWKS until their tokens expire)')
      .action(action((options: Record<string, unknown>) => withServices(options, async (services) => {
        const kid = await services.signingKeys.rotate('manual');
        const published = (await services.signingKeys.jwks()).keys.map((key) => key.kid);
        process.stdout.write(`signing key rotated: now signing with ${kid}; published keys: ${published.join(', ')}\n`);
      }, { logLevel: 'warn' }))),
  );
  keys.addCommand(
    withCommonOptions(new Command('rotate-audit'))
      .description("rotate the key of the audit log's encrypted fields (client address, user agent): new events use the new version within a minute, older versions stay to read older events")
      .action(action((options: Record<string, unknown>) => withServices(options, async (services) => {
        const version = await rotatePurposeKey(services, AUDIT_KEY_PURPOSE, 'audit_key.rotated', 'audit_key');
        process.stdout.write(`audit key rotated: new events are sealed under version ${version}; running servers take it within a minute\n`);
      }, { logLevel: 'warn' }))),
  );
  keys.addCommand(
    withCommonOptions(new Command('rotate-csrf'))
      .description("rotate the key of the sessions' CSRF tokens: within a minute every running server makes and accepts only tokens of the new version; clients whose token is refused (403 csrf_failed) take the new one from GET /v1/session")
      .action(action((options: Record<string, unknown>) => withServices(options, async (services) => {
        const version = await rotatePurposeKey(services, CSRF_KEY_PURPOSE, 'csrf_key.rotated', 'csrf_key');
        process.stdout.write(`CSRF key rotated: version ${version}; running servers make and accept only its tokens within a minute (clients re-read theirs from GET /v1/session)\n`);
      }, { logLevel: 'warn' }))),
  );
  keys.addCommand(
    withCommonOptions(new Command('rotate-webhook'))
      .description('rotate the key that encrypts webhook signing secrets and re-encrypt every stored secret under it (the secrets, and so the receivers, are unchanged)')
      .action(action((options: Record<string, unknown>) => withServices(options, async (services) => {
        const { version, reencrypted, unreadable } = await services.webhooks.rotateSecretKey({ type: 'system', id: null });
        process.stdout.write(`webhook secret key rotated: version ${version}; ${reencrypted} secret${reencrypted === 1 ? '' : 's'} re-encrypted${unreadable > 0 ? `; ${unreadable} did not decrypt and were left as they were` : ''}\n`);
        if (unreadable > 0) process.exitCode = 1;
      }, { logLevel: 'warn' }))),
  );
  keys.addCommand(
    withCommonOptions(new Command('rotate-blind-index'))
      .description('rotate the key of the email blind index and re-key every stored index (each email is decrypted under its data key); lookups try older versions until `keys retire-blind-index`')
      .action(action((options: Record<string, unknown>) => withServices(options, async (services) => {
        // The keyring of the index is in the PII store, the audit log in the main store: no
        // shared transaction. The event follows the re-keying; a killed run is re-run (it
        // adds another version and re-keys every row to it, the event then records that).
        const { version, reindexed, unreadable, conflicts } = await services.pii.rotateBlindIndex();
        await services.events.record({
          action: 'blind_index_key.rotated', actor: { type: 'system', id: null }, target: { type: 'blind_index_key', id: String(version) },
          origin: { ip: null, userAgent: null }, outcome: unreadable + conflicts === 0 ? 'success' : 'failure', details: { version, reindexed, unreadable, conflicts },
        });
        const left = [
          unreadable > 0 ? `${unreadable} did not decrypt` : '',
          conflicts > 0 ? `${conflicts} collided with an address already indexed under the new version` : '',
        ].filter(Boolean);
        process.stdout.write(`blind index key rotated: version ${version}; ${reindexed} index${reindexed === 1 ? '' : 'es'} re-keyed${left.length > 0 ? `; left as they were: ${left.join(', ')}` : ''}\n`);
        if (left.length > 0) process.exitCode = 1;
      }, { logLevel: 'warn' }))),
  );
  keys.addCommand(
    withCommonOptions(new Command('retire-blind-index'))
      .description('delete the blind-index key versions older than the current one, once no profile and no pending invitation is indexed under them')
      .action(action((options: Record<string, unknown>) => withServices(options, async (services) => {
        const versions = await services.pii.blindIndexKeyVersions();
        if (versions.length === 1) {
          process.stdout.write(`nothing to retire: version ${versions[0]!.version} is the only blind index key\n`);
          return;
        }
        // A server that has not yet read the new version may still index a signup under an older
        // one for up to a minute (it re-reads the versions every minute): wait that out.
        const settlesAt = versions[0]!.createdAt + KEY_RETIRE_AFTER_MS;
        if (Date.now() < settlesAt) {
          process.stderr.write(`rampart: nothing retired: version ${versions[0]!.version} is less than ${KEY_RETIRE_AFTER_MS / 60_000} minutes old (running servers take it within a minute); try again after ${new Date(settlesAt).toISOString()}\n`);
          process.exitCode = 1;
          return;
        }
        // Profiles a server indexed under an older version while it had not yet read the new one.
        const stragglers = await services.pii.reindexToCurrentKey();
        const profiles = await services.pii.profilesNotUnderCurrentIndexKey();
        const invitations = await services.orgs.pendingInvitationsUnderOlderIndexKeys(profiles.version);
        if (profiles.count > 0 || invitations.count > 0) {
          const held = [
            profiles.count > 0 ? `${profiles.count} profile${profiles.count === 1 ? ' is' : 's are'} (${stragglers.unreadable} did not decrypt, ${stragglers.conflicts} collided with another profile's address)` : '',
            invitations.count > 0 ? `${invitations.count} pending invitation${invitations.count === 1 ? ' is' : 's are'} (the last expires ${invitations.lastExpiresAt})` : '',
          ].filter(Boolean);
          process.stderr.write(`rampart: nothing retired: ${held.join(' and ')} still indexed under an older key version\n`);
          process.exitCode = 1;
          return;
        }
        const retired = await services.pii.retireOldBlindIndexKeys();
        await services.events.record({
          action: 'blind_index_key.retired', actor: { type: 'system', id: null }, target: { type: 'blind_index_key', id: String(profiles.version) },
          origin: { ip: null, userAgent: null }, outcome: 'success', details: { versions: retired, current: profiles.version, reindexed: stragglers.reindexed },
        });
        process.stdout.write(`blind index key versions retired: ${retired.join(', ')}; version ${profiles.version} is the only one left\n`);
      }, { logLevel: 'warn' }))),
  );
  keys.addCommand(
    withCommonOptions(new Command('rotate-hmac'))
      .description(`add a version of an HMAC purpose key (${ROTATING_HMAC_PURPOSES.join(', ')}); running servers compute new values under it within a minute. API tokens and recovery codes stored under older versions keep working until \`keys retire-hmac\`; rate-limit and login back-off counters start afresh`)
      .addArgument(new Argument('<purpose>', 'the key to rotate').choices(ROTATING_HMAC_PURPOSES))
      .action(action((purpose: RotatingHmacPurpose, options: Record<string, unknown>) => withServices(options, async (services) => {
        const version = await services.hmacKeys.rotate(purpose);
        process.stdout.write(`${purpose} HMAC key rotated: version ${version}; running servers take it within a minute${VERIFIER_PURPOSES.has(purpose) ? `; what is stored under older versions keeps working until \`rampart keys retire-hmac ${purpose}\`` : '; its counters start afresh'}\n`);
      }, { logLevel: 'warn' }))),
  );
  keys.addCommand(
    withCommonOptions(new Command('retire-hmac'))
      .description('delete the versions of an HMAC purpose key older than the current one, at least 2 minutes after the rotation; refused while live API tokens or unused recovery codes are still under them, unless --revoke-remaining revokes those')
      .addArgument(new Argument('<purpose>', 'the key to retire').choices(ROTATING_HMAC_PURPOSES))
      .option('--revoke-remaining', 'revoke the live API tokens and delete the unused recovery codes still under an older version (after a leak of the key), in the same transaction')
      .action(action((purpose: RotatingHmacPurpose, options: Record<string, unknown>) => withServices(options, async (services) => {
        const result = await services.hmacKeys.retire(purpose, { revokeRemaining: options['revokeRemaining'] === true });
        switch (result.outcome) {
          case 'nothing_to_retire':
            process.stdout.write(`nothing to retire: version ${result.version} is the only ${purpose} HMAC key\n`);
            return;
          case 'too_recent':
            process.stderr.write(`rampart: nothing retired: version ${result.version} is less than ${KEY_RETIRE_AFTER_MS / 60_000} minutes old (running servers take it within a minute); try again after ${new Date(result.settlesAt).toISOString()}\n`);
            process.exitCode = 1;
            return;
          case 'held': {
            const held = [
              result.tokens > 0 ? `${result.tokens} live API token${result.tokens === 1 ? '' : 's'}` : '',
              result.recoveryCodes > 0 ? `${result.recoveryCodes} unused recovery code${result.recoveryCodes === 1 ? '' : 's'} of ${result.recoveryCodeHolders} user${result.recoveryCodeHolders === 1 ? '' : 's'}` : '',
            ].filter(Boolean).join(' and ');
            process.stderr.write(`rampart: nothing retired: ${held} still under an older version; wait for them to expire or be replaced, or pass --revoke-remaining to revoke them\n`);
            process.exitCode = 1;
            return;
          }
          case 'retired': {
            const revoked = [
              result.revokedTokens > 0 ? `${result.revokedTokens} API token${result.revokedTokens === 1 ? '' : 's'} revoked` : '',
              result.revokedRecoveryCodes > 0 ? `${result.revokedRecoveryCodes} recovery code${result.revokedRecoveryCodes === 1 ? '' : 's'} of ${result.recoveryCodeHolders} user${result.recoveryCodeHolders === 1 ? '' : 's'} deleted (they generate a new set)` : '',
            ].filter(Boolean);
            process.stdout.write(`${purpose} HMAC key versions retired: ${result.retired.join(', ')}; version ${result.version} is the only one left${revoked.length > 0 ? `; ${revoked.join(', ')}` : ''}\n`);
          }
        }
      }, { logLevel: 'warn' }))),
  );
  keys.addCommand(rotateMasterCommand());
  return keys;
}
