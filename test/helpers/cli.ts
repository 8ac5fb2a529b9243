import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

export const BIN = resolve('bin/rampart.cjs');

/** The test process's environment without what would point a command at another server's stores. */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('RAMPART_') && !['DATABASE_URL', 'PII_DATABASE_URL', 'PUBLIC_URL'].includes(key)) env[key] = value;
  }
  return { ...env, ...extra };
}

const run = promisify(execFile);

/** Runs `rampart …args` (logs silent) and resolves with its exit code and output, failing or not. */
export function rampart(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return rampartWith({}, ...args);
}

/** `rampart`, with these environment values (the stores and Redis of a deployment). */
export function rampartWith(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, [BIN, ...args], { env: cliEnv({ LOG_LEVEL: 'silent', ...env }), timeout: 60_000 })
    .then(({ stdout, stderr }) => ({ code: 0, stdout, stderr }), (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }));
}
