import { hash as argon2Hash, parseOptions, verify as argon2Verify } from '@node-rs/argon2';
import { randomBytes } from 'node:crypto';
import { RampartError } from '../../errors.js';

export interface Argon2Parameters {
  memoryKiB: number;
  iterations: number;
  parallelism: number;
}

export interface HasherOptions {
  parameters: Argon2Parameters;
  /** Hashes running at once (each on a libuv worker thread, never on the event loop). */
  concurrency: number;
  /** Hashes allowed to wait; beyond that `server_busy` (503 + Retry-After). */
  queueLimit: number;
}

export interface VerifyResult {
  valid: boolean;
  /** The stored hash is weaker than the current parameters (or not argon2id): rehash it now. */
  needsRehash: boolean;
}

/** Verifies a non-argon2 hash format (bcrypt imports); registered by the import feature. */
export interface ForeignHashVerifier {
  matches(storedHash: string): boolean;
  verify(storedHash: string, password: string): Promise<boolean>;
}

/** @node-rs/argon2's Algorithm.Argon2id (a const enum, which isolated modules cannot import). */
const ARGON2ID = 2;

// Parameters read from a stored hash are bounded, so a planted hash cannot make
// one verification eat a gigabyte or a minute (kratos does the same).
const MAX_STORED_MEMORY_KIB = 262144;
const MAX_STORED_ITERATIONS = 16;
const MAX_STORED_PARALLELISM = 4;

/**
 * argon2id password hashing with admission control: at most `concurrency`
 * hashes in flight, a short FIFO queue behind them, and an immediate 503 when
 * the queue is full, so a login flood degrades into fast refusals instead of
 * starving every other request of CPU and memory.
 */
export class PasswordHasher {
  readonly parameters: Readonly<Argon2Parameters>;
  readonly #concurrency: number;
  readonly #queueLimit: number;
  readonly #waiting: Array<() => void> = [];
  readonly #foreign: ForeignHashVerifier[] = [];
  #running = 0;
  #dummyHash: Promise<string> | null = null;

  constructor(options: HasherOptions) {
    this.parameters = Object.freeze({ ...options.parameters });
    this.#concurrency = options.concurrency;
    this.#queueLimit = options.queueLimit;
  }

  registerForeignVerifier(verifier: ForeignHashVerifier): void {
    this.#foreign.push(verifier);
  }

  /** Hashes a password (NFKC-normalized, NIST 800-63B §5.1.1.2) into a PHC string. */
  async hash(password: string): Promise<string> {
    return this.#admit(() =>
      argon2Hash(normalizePassword(password), {
        algorithm: ARGON2ID,
        memoryCost: this.parameters.memoryKiB,
        timeCost: this.parameters.iterations,
        parallelism: this.parameters.parallelism,
      }),
    );
  }

  async verify(storedHash: string, password: string): Promise<VerifyResult> {
    const foreign = this.#foreign.find((verifier) => verifier.matches(storedHash));
    if (foreign) {
      const valid = await this.#admit(() => foreign.verify(storedHash, password));
      return { valid, needsRehash: valid };
    }
    if (!storedHash.startsWith('$argon2')) return { valid: false, needsRehash: false };
    let stored;
    try {
      stored = parseOptions(storedHash);
    } catch {
      return { valid: false, needsRehash: false };
    }
    if (stored.memoryCost > MAX_STORED_MEMORY_KIB || stored.timeCost > MAX_STORED_ITERATIONS || stored.parallelism > MAX_STORED_PARALLELISM) {
      return { valid: false, needsRehash: false };
    }
    const valid = await this.#admit(() => argon2Verify(storedHash, normalizePassword(password)).catch(() => false));
    const needsRehash = valid && (
      !storedHash.startsWith('$argon2id$') ||
      stored.memoryCost < this.parameters.memoryKiB ||
      stored.timeCost < this.parameters.iterations
    );
    return { valid, needsRehash };
  }

  /**
   * Spends the same work as a real verification and fails: used when the
   * account does not exist, so that unknown emails answer in the same time.
   */
  async verifyDummy(password: string): Promise<false> {
    await this.verify(await this.prepareDummy(), password);
    return false;
  }

  /** Computes the dummy hash ahead of time, so the first unknown-user login is not slower (start-up calls this). */
  prepareDummy(): Promise<string> {
    this.#dummyHash ??= this.hash(randomBytes(18).toString('base64url'));
    return this.#dummyHash;
  }

  /** Hashes in flight and waiting, for metrics and tests. */
  load(): { running: number; waiting: number } {
    return { running: this.#running, waiting: this.#waiting.length };
  }

  async #admit<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#concurrency) {
      if (this.#waiting.length >= this.#queueLimit) {
        throw new RampartError('server_busy', {
          detail: 'password hash queue full',
          headers: { 'Retry-After': '1' },
        });
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      // Hand the slot straight to the next waiter, so #running stays accurate.
      if (next) next();
      else this.#running--;
    }
  }
}

export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}
