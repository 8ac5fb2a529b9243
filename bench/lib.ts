import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import { TestClient } from '../test/helpers/client.js';

export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  baselineName?: string;
  baselineValue?: number;
  ratio?: number;
  target?: string;
}

export interface LoadResult {
  requestsPerSecond: number;
  /** 2xx responses per second. */
  okPerSecond: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

export interface LoadOptions {
  url: string;
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  headers?: Record<string, string>;
  body?: string;
  connections?: number;
  durationSeconds?: number;
  /** Requests per second per connection. */
  connectionRate?: number;
}

export async function load(options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: options.url,
    method: options.method ?? 'GET',
    headers: options.headers,
    body: options.body,
    connections: options.connections ?? 10,
    duration: options.durationSeconds ?? 5,
    connectionRate: options.connectionRate,
  });
  const seconds = result.duration || options.durationSeconds || 1;
  return {
    requestsPerSecond: result.requests.total / seconds,
    okPerSecond: result['2xx'] / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

export interface ChildServer {
  url: string;
  ca: string;
  dataDir: string;
  client(): TestClient;
  stop(): Promise<void>;
}

const BIN = resolve('bin/rampart.cjs');

/** Runs `rampart serve` in its own process with a fresh data dir (or a given one). */
export async function startRampart(env: Record<string, string> = {}, dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-'))): Promise<ChildServer> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', dataDir], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await firstUrl(child);
  const ca = readFileSync(join(dataDir, 'tls', 'cert.pem'), 'utf8');
  const clients: TestClient[] = [];
  return {
    url,
    ca,
    dataDir,
    client() {
      const client = new TestClient(url, ca);
      clients.push(client);
      return client;
    },
    async stop() {
      for (const client of clients) client.close();
      await stopChild(child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The hello-world baseline; with `replayFile` ({headers, body} as JSON), a server that sends that answer to every GET /. */
export async function startHelloWorld(tlsDataDir: string, replayFile?: string): Promise<{ url: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', resolve('bench/hello-world.ts'), tlsDataDir, ...(replayFile ? [replayFile] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await firstUrl(child);
  return { url, stop: () => stopChild(child) };
}

function firstUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const match = /listening on (\S+)/.exec(buffered);
      if (match) {
        resolvePromise(match[1]!);
        // Keep draining stdout (JSON logs) so the child never blocks on a full pipe.
        child.stdout!.off('data', onData);
        child.stdout!.resume();
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before listening`)));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolvePromise) => {
    if (child.exitCode !== null) return resolvePromise();
    child.once('exit', () => resolvePromise());
    child.kill('SIGTERM');
  });
}

/** Headers a server adds by itself (the replay's Fastify and Node write their own). */
const TRANSPORT_HEADERS = new Set(['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding']);

/** Writes `response` as a replay file for `startHelloWorld`, and returns its path. */
export function writeReplay(dataDir: string, response: { headers: Record<string, string | string[] | undefined>; text: string }): string {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (value === undefined || TRANSPORT_HEADERS.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const path = join(dataDir, 'replay.json');
  writeFileSync(path, JSON.stringify({ headers, body: response.text }));
  return path;
}

export function ratio(value: number, baseline: number): number {
  return baseline > 0 ? value / baseline : 0;
}
