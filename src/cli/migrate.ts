import { Command } from 'commander';
import { openMasterKeys } from '../crypto/master-keys.js';
import { openStores } from '../store/db.js';
import { migrateStores } from '../store/migrate.js';
import { action, configFrom, withCommonOptions } from './common.js';

export function migrateCommand(): Command {
  return withCommonOptions(new Command('migrate'))
    .description('bring both stores to the latest schema (serve also does this at start, unless MIGRATE_ON_START=false)')
    .action(action(async (options: Record<string, unknown>) => {
      const config = configFrom(options);
      process.umask(0o077);
      // The key file is generated here on a first `migrate`; a MASTER_KEY_COMMAND is checked to work.
      await openMasterKeys(config, { create: true });
      const stores = openStores(config);
      try {
        for (const report of await migrateStores(stores)) {
          const applied = report.applied.length === 0 ? 'up to date' : `applied ${report.applied.join(', ')}`;
          process.stdout.write(`${report.store} store (${report.store === 'main' ? stores.main.location : stores.pii.location}): ${applied}\n`);
        }
      } finally {
        await stores.close();
      }
    }));
}
