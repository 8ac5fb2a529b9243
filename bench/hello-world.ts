// The baseline: a bare Fastify hello-world over the same TLS settings, in its own process.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import { httpsServerOptions } from '../src/tls/certificate.js';

const dataDir = process.argv[2]!;
const material = {
  cert: readFileSync(join(dataDir, 'tls', 'cert.pem'), 'utf8'),
  key: readFileSync(join(dataDir, 'tls', 'key.pem'), 'utf8'),
  origin: 'self-signed' as const,
  certPath: '',
  keyPath: '',
};
const app = Fastify({ https: httpsServerOptions(material) });
app.get('/', async () => ({ hello: 'world' }));
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address() as { port: number };
process.stdout.write(`listening on https://127.0.0.1:${address.port}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
