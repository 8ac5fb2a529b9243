import { spawn } from 'node:child_process';
import { ConfigError, RampartError } from '../errors.js';
import { type KeyProvider, StaticKeyProvider, wrappingKeyId } from './key-provider.js';
import { parseMasterKeyFile } from './master-key-file.js';

/**
 * Master keys from a secrets manager: `MASTER_KEY_COMMAND` is run (by /bin/sh) and prints
 * the keys in the key file's format, one `<id> <base64url 32 bytes>` per line, current
 * first — e.g. `vault kv get -field=keys secret/rampart`, a cloud secrets manager's CLI, or
 * `systemd-creds cat rampart-master`. The keys then never sit on this host's disk.
 *
 * Only what the command prints on stdout is read, and it is never repeated anywhere: a
 * failure names the exit status and the first line of stderr (long base64url runs, such as a
 * key, blanked). The command runs at start, in the background as the keys age, before a wrap
 * once they are `refreshMs` old, and on an unknown key id when unwrapping (another instance
 * re-wrapped with a key this one has not seen). No wrap uses keys read more than `refreshMs`
 * ago, so within that time of a change to the secret every new wrap uses its current key,
 * and none uses a key the operator has retired.
 */
export interface MasterKeyCommandOptions {
  command: string;
  timeoutMs: number;
  refreshMs: number;
  /** A failed re-run at run time: the keys already read still unwrap (and wrap, for `refreshMs` after the last read). */
  onRefreshError?: (error: Error) => void;
  now?: () => number;
  /** Re-run in the background as the keys age (default true). */
  backgroundRefresh?: boolean;
}

/** Bytes of output read at most: a key list is tiny, a runaway command is not read to its end. */
const MAX_OUTPUT_BYTES = 64 * 1024;
/** The shortest pause between re-runs caused by unknown key ids. */
const MISS_RERUN_MS = 1000;

export class CommandKeyProvider implements KeyProvider {
  #inner: StaticKeyProvider;
  /** When the command last answered with keys. */
  #readAt: number;
  /** When it was last run, answering or not. */
  #triedAt: number;
  #running: Promise<Error | null> | null = null;
  readonly #now: () => number;

  private constructor(private readonly options: MasterKeyCommandOptions, keys: StaticKeyProvider) {
    this.#inner = keys;
    this.#now = options.now ?? Date.now;
    this.#readAt = this.#triedAt = this.#now();
    // Kept fresh in the background, so that a wrap (often inside a store transaction) rarely
    // has to wait for the command.
    if (options.backgroundRefresh !== false) {
      setInterval(() => {
        if (this.#now() - this.#readAt >= this.options.refreshMs / 2) void this.#rerun();
      }, Math.max(1000, this.options.refreshMs / 4)).unref();
    }
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

  /**
   * Wraps under the current key of a read at most `refreshMs` old. Older (the command keeps
   * failing), it refuses (503): the operator may have retired that key since, and whatever it
   * wrapped would become unreadable once the key leaves the secret. Unwrapping goes on.
   */
  async wrap(key: Uint8Array, aad: string): Promise<string> {
    if (this.#stale()) await (this.#running ?? (this.#now() - this.#triedAt >= MISS_RERUN_MS ? this.#rerun() : null));
    if (this.#stale()) {
      throw new RampartError('not_ready', {
        headers: { 'retry-after': '10' },
        detail: `MASTER_KEY_COMMAND has not answered for ${Math.round((this.#now() - this.#readAt) / 1000)} s: no new key is wrapped under master keys that may have been retired`,
      });
    }
    return this.#inner.wrapSync(key, aad);
  }

  async unwrap(wrapped: string, aad: string): Promise<Buffer | null> {
    const id = wrappingKeyId(wrapped);
    if (id !== null && !this.#inner.keyIds().includes(id)) await (this.#running ?? (this.#now() - this.#triedAt >= MISS_RERUN_MS ? this.#rerun() : null));
    return this.#inner.unwrapSync(wrapped, aad);
  }

  /** Runs the command now (`rampart keys rotate-master`); throws its failure. */
  async reload(): Promise<void> {
    const error = await this.#rerun();
    if (error) throw error;
  }

  #stale(): boolean {
    return this.#now() - this.#readAt >= this.options.refreshMs;
  }

  /** One run at a time; callers arriving meanwhile wait for it. Resolves with its failure, if any. */
  #rerun(): Promise<Error | null> {
    this.#triedAt = this.#now();
    this.#running ??= readKeys(this.options)
      .then((keys) => {
        this.#inner = keys;
        this.#readAt = this.#now();
        return null;
      }, (error: Error) => {
        this.options.onRefreshError?.(error);
        return error;
      })
      .finally(() => {
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
      if (failure !== null) {
        for (const chunk of out) chunk.fill(0);
        return reject(new ConfigError(`MASTER_KEY_COMMAND ${failure}${said ? `: ${said}` : ''}`));
      }
      const text = Buffer.concat(out);
      resolve(text.toString('utf8'));
      text.fill(0);
      for (const chunk of out) chunk.fill(0);
    });
  });
}

/**
 * The first non-empty stderr line, printable characters only, at most 200 of them, with every
 * run of 20 or more base64url characters blanked: a command that failed after echoing a key
 * line must not put the key in the log.
 */
function firstLine(text: string): string {
  const line = text.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
  return line.replace(/[^\x20-\x7e]/g, '?').replace(/[A-Za-z0-9_-]{20,}/g, '[redacted]').slice(0, 200);
}
