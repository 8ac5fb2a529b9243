import type { Config } from '../config/load.js';
import type { KeyProvider } from './key-provider.js';
import { CommandKeyProvider, type MasterKeyCommandOptions } from './master-key-command.js';
import { loadMasterKeyFile } from './master-key-file.js';

export type MasterKeyConfig = Pick<Config, 'masterKeyFile' | 'masterKeyCommand' | 'masterKeyCommandTimeoutSeconds' | 'masterKeyCommandRefreshSeconds'>;

/** How MASTER_KEY_COMMAND runs, from the configuration (serve, the CLI and doctor alike). */
export function masterKeyCommandOptions(config: MasterKeyConfig): Pick<MasterKeyCommandOptions, 'command' | 'timeoutMs' | 'refreshMs'> {
  if (config.masterKeyCommand === null) throw new TypeError('MASTER_KEY_COMMAND is not set');
  return {
    command: config.masterKeyCommand,
    timeoutMs: config.masterKeyCommandTimeoutSeconds * 1000,
    refreshMs: config.masterKeyCommandRefreshSeconds * 1000,
  };
}

/**
 * The master keys, from `MASTER_KEY_COMMAND` when set, else from the key file
 * (created, mode 0600, when `create` and it does not exist yet).
 */
export async function openMasterKeys(config: MasterKeyConfig, options: { create: boolean; onRefreshError?: (error: Error) => void }): Promise<KeyProvider> {
  if (config.masterKeyCommand !== null) {
    return CommandKeyProvider.open({ ...masterKeyCommandOptions(config), ...(options.onRefreshError ? { onRefreshError: options.onRefreshError } : {}) });
  }
  return loadMasterKeyFile({ path: config.masterKeyFile, create: options.create });
}
