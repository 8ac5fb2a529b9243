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
const PLAIN = { 'content-type': 'text/plain', 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' };
const CONNECT_REFUSAL = 'HTTP/1.1 405 Method Not Allowed\r\nallow: GET\r\ncontent-length: 0\r\nconnection: close\r\n\r\n';

export async function startMetricsListener(metrics: Metrics, host: string, port: number, logger: Logger): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, PLAIN).end('not found\n');
      return;
    }
    // One resource, one method: anything else is a 405 that says so (scanners read a 404 as "supported").
    if (req.method !== 'GET') {
      res.writeHead(405, { ...PLAIN, allow: 'GET' }).end('method not allowed\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' }).end(text),
      () => res.writeHead(500, PLAIN).end('error\n'),
    );
  });
  // No tunnels: Node drops a CONNECT unanswered when nothing listens for it.
  server.on('connect', (_req, socket) => {
    socket.resume();
    socket.end(CONNECT_REFUSAL, () => socket.destroy());
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
