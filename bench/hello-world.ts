// The baselines: a bare Fastify hello-world over the same TLS settings, in its own process.
// With a third argument (a JSON file of {headers, body}), it answers every GET / with that
// answer instead: the same bytes a Rampart route sends, with none of its work.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import { httpsServerOptions } from '../src/tls/certificate.js';

const dataDir = process.argv[2]!;
const replayFile = process.argv[3];
const material = {
  cert: readFileSync(join(dataDir, 'tls', 'cert.pem'), 'utf8'),
  key: readFileSync(join(dataDir, 'tls', 'key.pem'), 'utf8'),
  origin: 'self-signed' as const,
  certPath: '',
  keyPath: '',
};
const app = Fastify({ https: httpsServerOptions(material) });
if (replayFile) {
  const replay = JSON.parse(readFileSync(replayFile, 'utf8')) as { headers: Record<string, string>; body: string };
  app.get('/', (_request, reply) => {
    reply.headers(replay.headers);
    reply.send(replay.body);
  });
} else {
  app.get('/', async () => ({ hello: 'world' }));
}
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address() as { port: number };
process.stdout.write(`listening on https://127.0.0.1:${address.port}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
