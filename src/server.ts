import { lowerHelperThreadPriority } from './auth/password/thread-priority.js';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './app.js';
import { startBackground } from './monitoring/background.js';
import type { Clock } from './clock.js';
import { type Config, resolvePublicUrl } from './config/load.js';
import { createServices, type Services } from './services.js';
import { loadTlsMaterial } from './tls/certificate.js';

export interface RunningServer {
  app: FastifyInstance;
  services: Services;
  /** The URL it listens on, e.g. https://127.0.0.1:8443 */
  url: string;
  port: number;
  /** The separate metrics listener's port (null when it could not bind). */
  metricsPort: number | null;
  close(): Promise<void>;
}

/** Nice value of helper threads: argon2id hashes soak up idle CPU but never starve request handling. */
const HELPER_THREAD_NICENESS = 10;

/** Opens the stores (migrating them), builds the app and listens. */
export async function startServer(config: Config, logger: Logger, options: { clock?: Clock } = {}): Promise<RunningServer> {
  const tls = config.insecurePlainHttpOnLoopback
    ? null
    : await loadTlsMaterial({ dataDir: config.dataDir, certFile: config.tlsCertFile, keyFile: config.tlsKeyFile });
  const services = await createServices(config, logger, { clock: options.clock, recordDeploymentSettings: true });
  // The hasher's pool threads exist now (start-up computed the dummy hash): let them yield to the event loop.
  lowerHelperThreadPriority(HELPER_THREAD_NICENESS);
  let app: FastifyInstance;
  try {
    app = await buildApp(services, { tls });
    await app.ready();
    // Listen on the raw server: Fastify's own "Server listening" log would precede our line.
    await new Promise<void>((resolve, reject) => {
      app.server.once('error', reject);
      app.server.listen({ port: config.port, host: config.host }, () => {
        app.server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await services.close();
    throw error;
  }
  const port = (app.server.address() as AddressInfo).port;
  services.publicUrl = resolvePublicUrl(config, port);
  let background: Awaited<ReturnType<typeof startBackground>>;
  try {
    background = await startBackground(services);
  } catch (error) {
    // Nothing may keep the process alive after a failed start (a taken metrics port, say).
    app.server.close();
    app.server.closeAllConnections();
    await app.close().catch(() => {});
    await services.close();
    throw error;
  }
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    app,
    services,
    url: `${tls ? 'https' : 'http'}://${host}:${port}`,
    port,
    metricsPort: background.metricsPort,
    async close() {
      await background.stop();
      // Stop accepting, let in-flight requests finish, then close Fastify and the stores.
      const closed = new Promise<void>((resolve) => app.server.close(() => resolve()));
      app.server.closeIdleConnections();
      const idleCloser = setInterval(() => app.server.closeIdleConnections(), 100);
      await closed;
      clearInterval(idleCloser);
      await app.close();
      await services.close();
    },
  };
}
