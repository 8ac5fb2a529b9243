import { Command } from 'commander';
import { asyncStdout, createLogger } from '../logger.js';
import { startServer } from '../server.js';
import { action, configFrom, withCommonOptions } from './common.js';

export function serveCommand(): Command {
  return withCommonOptions(new Command('serve'))
    .description('run the HTTPS server (the default command)')
    .option('--port <n>', 'port to listen on; 0 picks a free one (env RAMPART_PORT)')
    .option('--host <address>', 'address to bind (env RAMPART_HOST)')
    .option('--insecure-plain-http-on-loopback', 'INSECURE: plain HTTP, loopback only, for a local TLS-terminating proxy')
    .action(action(async (options: Record<string, unknown>) => {
      const config = configFrom(options);
      // Files we create (stores, keys, outbox) are private to this user.
      process.umask(0o077);
      const stdout = asyncStdout();
      const logger = createLogger(config.logLevel, stdout);
      // Whatever ends the process (even an uncaught error), buffered log lines are written first.
      process.once('exit', () => stdout.flushSync());
      const server = await startServer(config, logger);
      process.stdout.write(`listening on ${server.url}\n`);
      if (config.insecurePlainHttpOnLoopback) {
        logger.warn('INSECURE: serving plain HTTP; only safe behind a TLS-terminating proxy on this host');
      }
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'shutting down');
        server.close().then(
          () => {
            stdout.flushSync();
            process.exit(0);
          },
          (error: unknown) => {
            logger.error({ err: error }, 'shutdown failed');
            stdout.flushSync();
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    }));
}
