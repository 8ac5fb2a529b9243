import type { Command } from 'commander';
import { type Config, loadConfig } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { createLogger } from '../logger.js';
import { createServices, type Services } from '../services.js';

/** Options every command takes, read with the same precedence as `serve`. */
export function withCommonOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'data directory (env RAMPART_DATA_DIR)')
    .option('--config <file>', 'JSON config file (default: DATA_DIR/rampart.config.json)');
}

export function configFrom(options: Record<string, unknown>): Config {
  const flags: Record<string, string | boolean | undefined> = {};
  for (const [name, value] of Object.entries(options)) {
    if (typeof value === 'string' || typeof value === 'boolean') flags[kebab(name)] = value;
  }
  return loadConfig({ flags, env: process.env });
}

function kebab(camel: string): string {
  return camel.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** Runs a command body; failures print one line and exit non-zero, never a stack trace. */
export function action<A extends unknown[]>(body: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await body(...args);
    } catch (error) {
      process.exitCode = 1;
      if (error instanceof ConfigError) {
        process.stderr.write(`rampart: ${error.message}\n`);
      } else {
        const message = error instanceof Error ? error.message : String(error);
        const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
        process.stderr.write(`rampart: ${message}${cause}\n`.replace(/\n(?!$)/g, ' '));
      }
    }
  };
}

/**
 * Opens every service (so what a command changes reaches the audit log like any event) without
 * serving. Logs are silent unless `logLevel` asks for more (a LOG_LEVEL below it still wins).
 */
export async function withServices<T>(options: Record<string, unknown>, body: (services: Services) => Promise<T>, { logLevel = 'silent' }: { logLevel?: 'silent' | 'warn' } = {}): Promise<T> {
  const config = configFrom(options);
  process.umask(0o077);
  const services = await createServices(config, createLogger(logLevel === 'warn' && config.logLevel !== 'info' ? config.logLevel : logLevel));
  try {
    return await body(services);
  } finally {
    await services.close();
  }
}
