import { spawn } from 'node:child_process';
import { ConfigError } from '../errors.js';
import { type KeyProvider, StaticKeyProvider, wrappingKeyId } from './key-provider.js';
import { parseMasterKeyFile } from './master-key-file.js';

/**
 * Master keys from a secrets manager: `MASTER_KEY_COMMAND` is run (by /bin/sh) and prints
 * the keys in the key file's format, one `<id> <base64url 32 bytes>` per line, current
 * first — e.g. `vault kv get -field=keys secret/rampart`, a cloud secrets manager's CLI, or
 * `systemd-creds cat rampart-master`. The keys then never sit on this host's disk.
 *
 * Only what the command prints on stdout is read, and it is never repeated anywhere: a
 * failure names the exit status and the first line of stderr. The command runs at start,
 * again before a wrap once the keys are `refreshMs` old (so new wraps move to a new current
 * key within that time and never use one the operator has retired), and on an unknown
 * key id when unwrapping (another instance re-wrapped with a key this one has not seen).
 */
export interface MasterKeyCommandOptions {
  command: string;
  timeoutMs: number;
  refreshMs: number;
  /** A failed re-run at run time: the keys already read stay in use. */
  onRefreshError?: (error: Error) => void;
  now?: () => number;
}

/** Bytes of output read at most: a key list is tiny, a runaway command is not read to its end. */
const MAX_OUTPUT_BYTES = 64 * 1024;
/** The shortest pause between re-runs caused by unknown key ids. */
const MISS_RERUN_MS = 1000;

export class CommandKeyProvider implements KeyProvider {
  #inner: StaticKeyProvider;
  #readAt: number;
  #running: Promise<void> | null = null;
  readonly #now: () => number;

  private constructor(private readonly options: MasterKeyCommandOptions, keys: StaticKeyProvider) {
    this.#inner = keys;
    this.#now = options.now ?? Date.now;
    this.#readAt = this.#now();
  }

  /** Runs the command once; a failure refuses start-up with a one-line reason. */
  static async open(options: MasterKeyCommandOptions): Promise<CommandKeyProvider> {
    return new CommandKeyProvider(options, await readKeys(options));
  }

  get currentKeyId(): string {
    return this.#inner.currentKeyId;
  }

  keyIds(): readonly string[] {
    return this.#inner.keyIds();
  }

  async wrap(key: Uint8Array, aad: string): Promise<string> {
    if (this.#now() - this.#readAt >= this.options.refreshMs) await this.#rerun();
    return this.#inner.wrapSync(key, aad);
  }

  async unwrap(wrapped: string, aad: string): Promise<Buffer | null> {
    const id = wrappingKeyId(wrapped);
    if (id !== null && !this.#inner.keyIds().includes(id) && this.#now() - this.#readAt >= MISS_RERUN_MS) await this.#rerun();
    return this.#inner.unwrapSync(wrapped, aad);
  }

  /** One run at a time; callers arriving meanwhile wait for it. */
  #rerun(): Promise<void> {
    this.#running ??= readKeys(this.options)
      .then((keys) => {
        this.#inner = keys;
      }, (error: Error) => {
        this.options.onRefreshError?.(error);
      })
      .finally(() => {
        this.#readAt = this.#now();
        this.#running = null;
      });
    return this.#running;
  }
}

/** Runs the command and parses its output; every failure is a ConfigError without the output. */
export async function readKeys(options: Pick<MasterKeyCommandOptions, 'command' | 'timeoutMs'>): Promise<StaticKeyProvider> {
  const output = await run(options.command, options.timeoutMs);
  try {
    return new StaticKeyProvider(parseMasterKeyFile(output, 'MASTER_KEY_COMMAND output'));
  } catch (error) {
    // parseMasterKeyFile's messages name the rule, never the line that broke it.
    throw error instanceof ConfigError ? error : new ConfigError(`MASTER_KEY_COMMAND output: ${(error as Error).message}`);
  }
}

function run(command: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // Its own process group, so that a timeout kills what the shell started too (an
    // orphaned grandchild would hold the pipes open, and start-up would wait for it).
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    let failure: string | null = null;
    const stop = (reason: string) => {
      failure ??= reason;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => stop(`did not finish within ${timeoutMs / 1000} s`), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > MAX_OUTPUT_BYTES) stop(`printed more than ${MAX_OUTPUT_BYTES} bytes`);
      else out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (err.length < 4096) err += chunk.toString('utf8');
    });
    child.on('error', (error) => stop(`could not be started (${error.message})`));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const said = firstLine(err);
      if (failure === null && code !== 0) failure = `exited with ${code === null ? `signal ${signal}` : `status ${code}`}`;
      if (failure !== null) return reject(new ConfigError(`MASTER_KEY_COMMAND ${failure}${said ? `: ${said}` : ''}`));
      const text = Buffer.concat(out);
      resolve(text.toString('utf8'));
      text.fill(0);
      for (const chunk of out) chunk.fill(0);
    });
  });
}

/** The first non-empty stderr line, printable characters only, at most 200 of them. */
function firstLine(text: string): string {
  const line = text.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
  return line.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}
