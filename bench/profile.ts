/**
 * Profiles one route of a running server: `npm run bench:profile` (ROUTE=/v1/session,
 * SECS=8, WARM=2 seconds of warm-up, TOKEN=1 with an API token instead of the cookie; PROF=1 writes V8 CPU profiles of the server to /tmp/prof; NODE_FLAGS adds Node or
 * V8 options to the server's command line, e.g. --perf-basic-prof for `perf`). Prints requests/s and
 * the server's CPU time per request (from /proc), which is steadier than requests/s on a
 * busy machine. A tool for finding where time goes; the figures that count are `npm run bench`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { load, type LoadOptions } from './lib.js';
import { TestClient } from '../test/helpers/client.js';
const dataDir = mkdtempSync(join(tmpdir(), 'prof-'));
const args = [...(process.env.NODE_FLAGS ? process.env.NODE_FLAGS.split(' ') : []), ...(process.env.PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : [])];
const child = spawn(process.execPath, [...args, resolve('bin/rampart.cjs'), 'serve', '--port', '0', '--data-dir', dataDir], {
  env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', RATE_LIMIT_ANON_PER_MINUTE: '1000000', RATE_LIMIT_AUTH_PER_MINUTE: '1000000', RATE_LIMIT_ACCOUNT_PER_MINUTE: '1000000', LOGIN_BACKOFF_AFTER_FAILURES: '1000000', LOGIN_ACCOUNT_BACKOFF_AFTER_FAILURES: '1000000', METRICS_PORT: '0' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise<string>((ok) => { let b = ''; const on = (c: Buffer) => { b += c; const m = /listening on (\S+)/.exec(b); if (m) { child.stdout!.off('data', on); child.stdout!.resume(); ok(m[1]!); } }; child.stdout!.on('data', on); });
const client = new TestClient(url, readFileSync(join(dataDir, 'tls', 'cert.pem'), 'utf8'));
const signup = await client.post('/v1/signup', { email: 'bench.user@example.com', password: 'violet-Tractor-marble-harbor-Quill', name: 'Bench User' });
if (signup.status !== 201) throw new Error(String(signup.status));
const cookie = `__Host-rampart_session=${client.cookies.get('__Host-rampart_session')}`;
// TOKEN=1: the route is called with an API token (profile:read) instead of the session cookie.
const token = process.env.TOKEN
  ? ((await client.post('/v1/me/tokens', { name: 'profile', scopes: ['profile:read'] })).body as { token: string }).token
  : null;
const path = process.env.ROUTE ?? '/v1/session';
const ticks = (path: string) => { const f = readFileSync(path, 'utf8').split(') ')[1]!.split(' '); return (Number(f[11]) + Number(f[12])) * 10; };
const cpu = () => ticks(`/proc/${child.pid}/stat`);
const mainCpu = () => ticks(`/proc/${child.pid}/task/${child.pid}/stat`);
const login = process.env.ROUTE === '/v1/login';
const request: Omit<LoadOptions, 'url' | 'durationSeconds'> = login
  ? { method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'bench.user@example.com', password: 'violet-Tractor-marble-harbor-Quill' }), connections: Number(process.env.CONN ?? 6) }
  : { headers: token ? { authorization: `Bearer ${token}` } : { cookie }, connections: 10 };
await load({ url: `${url}${process.env.ROUTE ?? '/v1/session'}`, ...request, durationSeconds: Number(process.env.WARM ?? 2) }); // warm-up
const c0 = cpu();
const m0 = mainCpu();
const own0 = process.cpuUsage();
const r = await load({ url: `${url}${path}`, ...request, durationSeconds: Number(process.env.SECS ?? 8) });
const used = cpu() - c0;
const usedMain = mainCpu() - m0;
const own = process.cpuUsage(own0);
console.log(path, 'rps', Math.round(r.requestsPerSecond), 'ok/s', Math.round(r.okPerSecond), 'non2xx', r.non2xx, 'server CPU µs/request', Math.round(used * 1000 / (r.requestsPerSecond * Number(process.env.SECS ?? 8))), 'of which main thread', Math.round(usedMain * 1000 / (r.requestsPerSecond * Number(process.env.SECS ?? 8))), 'load generator CPU µs/request', Math.round((own.user + own.system) / (r.requestsPerSecond * Number(process.env.SECS ?? 8))));
client.close();
child.kill('SIGINT');
await new Promise((ok) => child.once('exit', ok));
