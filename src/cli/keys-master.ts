import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { addMasterKey, loadMasterKeyFile, removeMasterKeys } from '../crypto/master-key-file.js';
import { createLogger } from '../logger.js';
import { createServices } from '../services.js';
import { action, configFrom, withCommonOptions } from './common.js';

/**
 * `rampart keys rotate-master`: a new master key becomes current, every wrapped
 * key (per-user data keys, purpose keys, signing keys) is re-wrapped under it,
 * and with --retire the old master keys are removed once nothing needs them.
 * No downtime: running servers re-read the key file when it changes.
 */
export function rotateMasterCommand(): Command {
  return withCommonOptions(new Command('rotate-master'))
    .description('add a new master key, re-wrap every data key under it (no downtime); --retire removes old keys nothing uses any more')
    .option('--retire', 'remove the older master keys from the key file after re-wrapping')
    .action(action(async (options: Record<string, unknown>) => {
      const { retire, ...rest } = options;
      const config = configFrom(rest);
      process.umask(0o077);
      const newId = addMasterKey(config.masterKeyFile);
      const keys = loadMasterKeyFile({ path: config.masterKeyFile, create: false });
      const services = await createServices(config, createLogger('warn'), { keys });
      try {
        process.stdout.write(`new master key ${newId}; re-wrapping…\n`);
        const bar = new cliProgress.SingleBar({ format: '{column} [{bar}] {value}/{total}', stream: process.stderr }, cliProgress.Presets.shades_classic);
        for (const column of services.wrappedKeys) {
          const counts = await column.countByKeyId();
          const total = [...counts].filter(([id]) => id !== newId).reduce((sum, [, n]) => sum + n, 0);
          if (total === 0) continue;
          bar.start(total, 0, { column: column.name });
          const changed = await column.rewrap(keys, (done) => bar.update(done));
          bar.stop();
          process.stdout.write(`${column.name}: ${changed} re-wrapped\n`);
        }
        await services.events.record({ action: 'master_key.rotated', actor: { type: 'system', id: null }, outcome: 'success', details: { keyId: newId } });
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
