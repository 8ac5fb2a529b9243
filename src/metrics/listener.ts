import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';

export interface MetricsListener {
  /** The port it listens on, or null when it could not bind. */
  port: number | null;
  close(): Promise<void>;
}

/**
 * Prometheus metrics on their own plain-HTTP listener (loopback by default),
 * never on the public TLS listener: what they reveal (traffic, failure rates) is
 * for the operator's scraper only. A taken port does not stop the server.
 */
export async function startMetricsListener(metrics: Metrics, host: string, port: number, logger: Logger): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' }).end(text),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('error\n'),
    );
  });
  const bound = await new Promise<boolean>((resolve) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      logger.warn({ code: error.code, host, port }, 'metrics listener could not bind; metrics are not served by this process');
      resolve(false);
    });
    server.listen(port, host, () => resolve(true));
  });
  return {
    port: bound ? (server.address() as AddressInfo).port : null,
    close: () => (bound ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve()),
  };
}
