import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import type { Config } from '../config/load.js';
import type { KeyProvider } from '../crypto/key-provider.js';
import { addMasterKey, loadMasterKeyFile, removeMasterKeys } from '../crypto/master-key-file.js';
import { CommandKeyProvider } from '../crypto/master-key-command.js';
import { masterKeyCommandOptions } from '../crypto/master-keys.js';
import { ConfigError } from '../errors.js';
import { createLogger } from '../logger.js';
import { createServices, type Services } from '../services.js';
import { action, configFrom, withCommonOptions } from './common.js';

/** After the refresh interval, the margin for wraps already under way to be committed. */
const STRAGGLER_MARGIN_MS = 5000;

/**
 * `rampart keys rotate-master`: a new master key becomes current, every wrapped
 * key (per-user data keys, purpose keys, signing keys) is re-wrapped under it,
 * and with --retire the old master keys are removed once nothing needs them.
 * No downtime: running servers re-read the key file when it changes.
 *
 * With MASTER_KEY_COMMAND the keys live in a secrets manager Rampart cannot write:
 * the operator puts a new key first in the secret, and this command re-wraps under
 * it, waits until every server has read the keys again (MASTER_KEY_COMMAND_REFRESH_SECONDS),
 * re-wraps what they wrapped meanwhile, and says which old keys nothing needs any more.
 */
export function rotateMasterCommand(): Command {
  return withCommonOptions(new Command('rotate-master'))
    .description('add a new master key, re-wrap every data key under it (no downtime); --retire removes old keys nothing uses any more. With MASTER_KEY_COMMAND: re-wrap under the key it prints first')
    .option('--retire', 'remove the older master keys from the key file after re-wrapping')
    .action(action(async (options: Record<string, unknown>) => {
      const { retire, ...rest } = options;
      const config = configFrom(rest);
      process.umask(0o077);
      if (config.masterKeyCommand !== null) {
        if (retire) throw new ConfigError('with MASTER_KEY_COMMAND, old master keys are removed from the secret it reads, not by rampart; run rotate-master without --retire: it says which ones nothing needs');
        return rotateFromCommand(config);
      }
      const newId = addMasterKey(config.masterKeyFile);
      const keys = loadMasterKeyFile({ path: config.masterKeyFile, create: false });
      const services = await createServices(config, createLogger('warn'), { keys });
      try {
        process.stdout.write(`new master key ${newId}; re-wrapping…\n`);
        await rewrapAll(services, keys);
        await recordRotation(services, newId);
        if (retire) {
          const old = keys.keyIds().filter((id) => id !== newId);
          for (const column of services.wrappedKeys) {
            const counts = await column.countByKeyId();
            const still = old.filter((id) => (counts.get(id) ?? 0) > 0);
            if (still.length > 0) throw new Error(`${column.name} still has values wrapped by ${still.join(', ')}; not retiring`);
          }
          removeMasterKeys(config.masterKeyFile, old);
          process.stdout.write(`retired ${old.length === 0 ? 'nothing' : old.join(', ')}\n`);
        }
      } finally {
        await services.close();
      }
    }));
}

async function rotateFromCommand(config: Config): Promise<void> {
  const keys = await CommandKeyProvider.open({ ...masterKeyCommandOptions(config), backgroundRefresh: false });
  const current = keys.currentKeyId;
  const services = await createServices(config, createLogger('warn'), { keys });
  try {
    process.stdout.write(`master keys from MASTER_KEY_COMMAND, current ${current}; re-wrapping…\n`);
    await rewrapAll(services, keys);
    const waitMs = config.masterKeyCommandRefreshSeconds * 1000 + STRAGGLER_MARGIN_MS;
    process.stdout.write(`waiting ${Math.round(waitMs / 1000)} s for every server to read the keys again, then re-wrapping what they wrapped meanwhile…\n`);
    await sleep(waitMs);
    await keys.reload();
    if (keys.currentKeyId !== current) throw new Error(`MASTER_KEY_COMMAND now prints ${keys.currentKeyId} first (was ${current}); run rotate-master again`);
    await rewrapAll(services, keys);
    await recordRotation(services, current);
    const used = new Map<string, number>();
    for (const column of services.wrappedKeys) {
      for (const [id, n] of await column.countByKeyId()) if (id !== current) used.set(id, (used.get(id) ?? 0) + n);
    }
    const old = keys.keyIds().filter((id) => id !== current);
    const free = old.filter((id) => !used.has(id));
    if (free.length > 0) process.stdout.write(`nothing is wrapped under ${free.join(', ')} any more: remove ${free.length === 1 ? 'it' : 'them'} from the secret MASTER_KEY_COMMAND reads\n`);
    for (const [id, n] of used) process.stdout.write(`still ${n} value(s) wrapped under ${id}; run rotate-master again\n`);
  } finally {
    await services.close();
  }
}

/** Re-wraps every registered column under the provider's current key, with a progress bar on stderr. */
async function rewrapAll(services: Services, keys: KeyProvider): Promise<void> {
  const bar = new cliProgress.SingleBar({ format: '{column} [{bar}] {value}/{total}', stream: process.stderr }, cliProgress.Presets.shades_classic);
  for (const column of services.wrappedKeys) {
    const counts = await column.countByKeyId();
    const total = [...counts].filter(([id]) => id !== keys.currentKeyId).reduce((sum, [, n]) => sum + n, 0);
    if (total === 0) continue;
    bar.start(total, 0, { column: column.name });
    const changed = await column.rewrap(keys, (done) => bar.update(done));
    bar.stop();
    process.stdout.write(`${column.name}: ${changed} re-wrapped\n`);
  }
}

function recordRotation(services: Services, keyId: string): Promise<unknown> {
  return services.events.record({ action: 'master_key.rotated', actor: { type: 'system', id: null }, outcome: 'success', details: { keyId } });
}
