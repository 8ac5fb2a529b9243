import { Command } from 'commander';
import { loadMasterKeyFile } from '../crypto/master-key-file.js';
import { openStores } from '../store/db.js';
import { migrateStores } from '../store/migrate.js';
import { action, configFrom, withCommonOptions } from './common.js';

export function migrateCommand(): Command {
  return withCommonOptions(new Command('migrate'))
    .description('bring both stores to the latest schema (serve also does this at start, unless MIGRATE_ON_START=false)')
    .action(action(async (options: Record<string, unknown>) => {
      const config = configFrom(options);
      process.umask(0o077);
      loadMasterKeyFile({ path: config.masterKeyFile, create: true });
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
