/**
 * `npm run bench`: speed goals measured against baselines taken in the same run
 * on the same machine, printed as figures and ratios (never asserted in unit tests).
 *
 *   BENCH_SECONDS=10 npm run bench        # seconds per measurement (default 10)
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import { type BenchRow, type ChildServer, load, ratio, startHelloWorld, startRampart, writeReplay } from './lib.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CORES = availableParallelism();
const ARGON2 = { memoryCost: 19456, timeCost: 2, parallelism: 1, algorithm: 2 };
const BENCH_LIMITS = {
  RATE_LIMIT_ANON_PER_MINUTE: '1000000', RATE_LIMIT_AUTH_PER_MINUTE: '1000000', RATE_LIMIT_ACCOUNT_PER_MINUTE: '1000000',
  LOGIN_BACKOFF_AFTER_FAILURES: '1000000', LOGIN_ACCOUNT_BACKOFF_AFTER_FAILURES: '1000000', METRICS_PORT: '0',
};

export interface BenchContext {
  seconds: number;
  cores: number;
  /** The running default server and a signed-in user's cookie. */
  rampart: ChildServer;
  sessionCookie: string;
  /** Requests/s of the bare Fastify hello-world over the same TLS, measured in this run. */
  helloWorldRps: number;
  helloWorldUrl: string;
}

/** Raw argon2id verifications/s with the server's parameters and concurrency (one per core), for `seconds`. */
async function rawArgon2Rate(seconds: number): Promise<number> {
  const stored = await argon2Hash('correct horse battery staple', ARGON2);
  let done = 0;
  const deadline = Date.now() + seconds * 1000;
  const started = Date.now();
  await Promise.all(Array.from({ length: CORES }, async () => {
    while (Date.now() < deadline) {
      await argon2Verify(stored, 'correct horse battery staple');
      done++;
    }
  }));
  return done / ((Date.now() - started) / 1000);
}

async function main(): Promise<void> {
  const rows: BenchRow[] = [];
  console.error(`# rampart bench: ${SECONDS}s per measurement, ${CORES} cores, node ${process.version}`);

  // Rate limits and login back-off stay ON (their cost is part of every figure) but high enough that a
  // load generator on one address with one session is never refused; METRICS_PORT 0 avoids a taken port.
  const rampart = await startRampart({ LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info', ...BENCH_LIMITS });
  const hello = await startHelloWorld(rampart.dataDir);
  let replay: Awaited<ReturnType<typeof startHelloWorld>> | null = null;
  try {
    const client = rampart.client();
    const email = 'bench.user@example.com';
    // No word of the email or name (the password policy refuses user context words).
    const password = 'violet-Tractor-marble-harbor-Quill';
    const signup = await client.post('/v1/signup', { email, password, name: 'Bench User' });
    if (signup.status !== 201) throw new Error(`signup failed: ${signup.status} ${signup.text}`);
    const sessionCookie = `__Host-rampart_session=${client.cookies.get('__Host-rampart_session')}`;

    // Each server gets the same short warm-up (JIT, caches, TLS session set-up) before it is measured.
    const warmUpSeconds = Math.min(3, Math.max(1, SECONDS / 4));
    console.error('# hello-world baseline…');
    await load({ url: hello.url, connections: 10, durationSeconds: warmUpSeconds });
    const helloBefore = await load({ url: hello.url, connections: 10, durationSeconds: SECONDS });
    console.error('# GET /v1/session…');
    await load({ url: `${rampart.url}/v1/session`, headers: { cookie: sessionCookie }, connections: 10, durationSeconds: warmUpSeconds });
    const session = await load({ url: `${rampart.url}/v1/session`, headers: { cookie: sessionCookie }, connections: 10, durationSeconds: SECONDS });
    if (session.non2xx > 0) throw new Error(`GET /v1/session answered ${session.non2xx} non-2xx`);
    // The VM's speed drifts within a run (one run saw the same work go 1.5× faster a minute
    // later), so the baseline is taken right before and right after the route, and averaged.
    console.error('# hello-world baseline again…');
    const helloAfter = await load({ url: hello.url, connections: 10, durationSeconds: SECONDS });
    const helloWorld = { requestsPerSecond: (helloBefore.requestsPerSecond + helloAfter.requestsPerSecond) / 2 };
    console.error(`# hello-world: ${helloBefore.requestsPerSecond.toFixed(0)} req/s before, ${helloAfter.requestsPerSecond.toFixed(0)} after`);
    rows.push({ name: 'GET /v1/session', value: session.requestsPerSecond, unit: 'req/s', baselineName: 'Fastify hello-world (same TLS; mean of before and after)', baselineValue: helloWorld.requestsPerSecond, ratio: ratio(session.requestsPerSecond, helloWorld.requestsPerSecond), target: '>= 0.5' });
    // A second baseline that separates the route's work from the size of its answer: the load
    // generator shares the cores and parses every answer, so ~1.2 KB of headers and body cost
    // it more than the hello-world's ~170 bytes. This server sends the route's own answer.
    console.error('# the same answer from a server doing nothing else…');
    replay = await startHelloWorld(rampart.dataDir, writeReplay(rampart.dataDir, await client.get('/v1/session')));
    await load({ url: replay.url, connections: 10, durationSeconds: warmUpSeconds });
    const sameAnswer = await load({ url: replay.url, connections: 10, durationSeconds: SECONDS });
    rows.push({ name: 'Fastify sending GET /v1/session\'s answer (same headers and body, no work)', value: sameAnswer.requestsPerSecond, unit: 'req/s', baselineName: 'Fastify hello-world (same TLS)', baselineValue: helloWorld.requestsPerSecond, ratio: ratio(sameAnswer.requestsPerSecond, helloWorld.requestsPerSecond), target: 'information: the ceiling the answer\'s size sets' });
    rows.push({ name: 'GET /v1/session', value: session.requestsPerSecond, unit: 'req/s', baselineName: 'the same answer with no work', baselineValue: sameAnswer.requestsPerSecond, ratio: ratio(session.requestsPerSecond, sameAnswer.requestsPerSecond), target: 'information: the cost of the route\'s work' });

    // The raw hash rate of this VM drifts by a fifth over a minute (measured: 222–274/s in one
    // hour), so it is taken right before and right after the login flood, and averaged.
    console.error('# raw argon2id rate, before the login flood…');
    const rawBefore = await rawArgon2Rate(SECONDS / 2);
    console.error('# login flood with a cheap route alongside…');
    const loginBody = JSON.stringify({ email, password });
    const [logins, cheap] = await Promise.all([
      load({ url: `${rampart.url}/v1/login`, method: 'POST', headers: { 'content-type': 'application/json' }, body: loginBody, connections: CORES * 3, durationSeconds: SECONDS }),
      load({ url: `${rampart.url}/healthz`, connections: 1, connectionRate: 50, durationSeconds: SECONDS }),
    ]);
    console.error('# raw argon2id rate, after the login flood…');
    const rawAfter = await rawArgon2Rate(SECONDS / 2);
    const rawRate = (rawBefore + rawAfter) / 2;
    console.error(`# raw argon2id: ${rawBefore.toFixed(1)}/s before, ${rawAfter.toFixed(1)}/s after`);
    rows.push({ name: 'POST /v1/login (200s)', value: logins.okPerSecond, unit: 'logins/s', baselineName: `raw argon2id verify, ${CORES} at once (mean of before and after)`, baselineValue: rawRate, ratio: ratio(logins.okPerSecond, rawRate), target: '>= 0.9' });
    rows.push({ name: 'GET /healthz p99 during login flood', value: cheap.p99, unit: 'ms', target: '< 25 ms' });
    if (logins.non2xx > 0) console.error(`# note: ${logins.non2xx} logins answered non-2xx (503 when the hash queue is full)`);

    const context: BenchContext = { seconds: SECONDS, cores: CORES, rampart, sessionCookie, helloWorldRps: helloWorld.requestsPerSecond, helloWorldUrl: hello.url };
    // Feature benchmarks live beside this file and are picked up when present.
    for (const [file, exportName] of [['tokens.ts', 'benchTokens'], ['audit.ts', 'benchAudit']] as const) {
      const path = resolve('bench', file);
      if (!existsSync(path)) continue;
      console.error(`# ${file}…`);
      const module = (await import(path)) as Record<string, (ctx: BenchContext) => Promise<BenchRow[]>>;
      rows.push(...(await module[exportName]!(context)));
    }
  } finally {
    await replay?.stop();
    await hello.stop();
    await rampart.stop();
  }
  print(rows);
}

function print(rows: BenchRow[]): void {
  const format = (n: number | undefined, digits = 1) => (n === undefined ? '' : n.toLocaleString('en-US', { maximumFractionDigits: digits }));
  console.log('| measurement | value | baseline (same run) | ratio | target |');
  console.log('|---|---|---|---|---|');
  for (const row of rows) {
    const baseline = row.baselineName ? `${row.baselineName}: ${format(row.baselineValue)}` : '';
    console.log(`| ${row.name} | ${format(row.value)} ${row.unit} | ${baseline} | ${row.ratio === undefined ? '' : format(row.ratio, 2)} | ${row.target ?? ''} |`);
  }
}

await main();
