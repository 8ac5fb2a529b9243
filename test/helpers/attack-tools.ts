/**
 * Running the external attack tools of the ASVS checklist §9 (sqlmap, hydra, nmap;
 * Debian packages that .ci/run installs) against a test server on 127.0.0.1.
 * A test that needs a tool skips with a reason when `toolPath` finds nothing.
 */
import { spawn, spawnSync } from 'node:child_process';

/** The tool's path, or '' when it is not installed. */
export function toolPath(name: string): string {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
}

export const skipUnlessInstalled = (name: string): string | false =>
  toolPath(name) === '' ? `${name} is not installed (bash .ci/run installs it: apt-get install sqlmap hydra nmap)` : false;

export interface ToolRun {
  /** Exit status; 124 (or null) when the hard time limit killed it. */
  code: number | null;
  stdout: string;
  stderr: string;
  milliseconds: number;
}

/**
 * Runs `command args` under coreutils `timeout` (a hard wall-clock cap that also
 * kills it with SIGKILL 5 s later). Asynchronous on purpose: the server under
 * attack lives in this process and must keep serving while the tool runs.
 */
export function runTool(command: string, args: string[], options: { seconds: number; cwd?: string }): Promise<ToolRun> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('timeout', ['--kill-after=5', String(options.seconds), command, ...args], {
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr, milliseconds: Date.now() - started }));
  });
}

/** A tool killed by its time limit proved nothing: fail with what it printed last. */
export function assertFinished(run: ToolRun, name: string): void {
  if (run.code === 124 || run.code === 137 || run.code === null) {
    throw new Error(`${name} hit its time limit after ${run.milliseconds} ms\n${run.stdout.slice(-2000)}\n${run.stderr.slice(-2000)}`);
  }
}
