import { Command } from 'commander';
import { AUDIT_KEY_PURPOSE } from '../audit/field-keys.js';
import { createLogger } from '../logger.js';
import { createServices } from '../services.js';
import { action, configFrom, withCommonOptions } from './common.js';
import { rotateMasterCommand } from './keys-master.js';

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
      .action(action(async (options: Record<string, unknown>) => {
        const config = configFrom(options);
        process.umask(0o077);
        const services = await createServices(config, createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel));
        try {
          const kid = await services.signingKeys.rotate('manual');
          const published = (await services.signingKeys.jwks()).keys.map((key) => key.kid);
          process.stdout.write(`signing key rotated: now signing with ${kid}; published keys: ${published.join(', ')}\n`);
        } finally {
          await services.close();
        }
      })),
  );
  keys.addCommand(
    withCommonOptions(new Command('rotate-audit'))
      .description("rotate the key of the audit log's encrypted fields (client address, user agent): new events use the new version within a minute, older versions stay to read older events")
      .action(action(async (options: Record<string, unknown>) => {
        const config = configFrom(options);
        process.umask(0o077);
        const services = await createServices(config, createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel));
        try {
          // The new version and the event that records it, together or not at all.
          const version = await services.stores.main.db.transaction().execute(async (trx) => {
            const added = await services.keyring.rotate(AUDIT_KEY_PURPOSE, trx);
            await services.events.record({
              action: 'audit_key.rotated', actor: { type: 'system', id: null }, target: { type: 'audit_key', id: String(added) },
              origin: { ip: null, userAgent: null }, outcome: 'success', details: { version: added },
            }, trx);
            return added;
          });
          process.stdout.write(`audit key rotated: new events are sealed under version ${version}; running servers take it within a minute\n`);
        } finally {
          await services.close();
        }
      })),
  );
  keys.addCommand(
    withCommonOptions(new Command('rotate-webhook'))
      .description('rotate the key that encrypts webhook signing secrets and re-encrypt every stored secret under it (the secrets, and so the receivers, are unchanged)')
      .action(action(async (options: Record<string, unknown>) => {
        const config = configFrom(options);
        process.umask(0o077);
        const services = await createServices(config, createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel));
        try {
          const { version, reencrypted, unreadable } = await services.webhooks.rotateSecretKey({ type: 'system', id: null });
          process.stdout.write(`webhook secret key rotated: version ${version}; ${reencrypted} secret${reencrypted === 1 ? '' : 's'} re-encrypted${unreadable > 0 ? `; ${unreadable} did not decrypt and were left as they were` : ''}\n`);
          if (unreadable > 0) process.exitCode = 1;
        } finally {
          await services.close();
        }
      })),
  );
  keys.addCommand(rotateMasterCommand());
  return keys;
}
