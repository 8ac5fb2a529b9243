import { Worker } from 'node:worker_threads';
import { RampartError } from '../../errors.js';
import type { StrengthResult } from './strength.js';

export interface StrengthEstimatorOptions {
  /** An evaluation taking longer is abandoned (the worker is replaced) and the password refused. */
  timeoutMs: number;
  /** Evaluations allowed to wait; beyond that `server_busy` (503 + Retry-After). */
  queueLimit: number;
}

interface Job {
  password: string;
  userInputs: string[];
  resolve(result: StrengthResult): void;
  reject(error: unknown): void;
}

/** What a password that zxcvbn could not score in time gets: refused as too weak, never accepted unexamined. */
const UNSCORED: StrengthResult = { score: 0, isCommon: false, containsUserInfo: false, suggestions: ['Choose a different password.'], timedOut: true };

/**
 * zxcvbn on a worker thread. Its matchers are super-linear: crafted inputs
 * full of l33t characters (`p4$$w0rd…`) take seconds (zxcvbn-ts issue #164),
 * which on the event loop would freeze every request. Here one worker scores
 * one password at a time, a short FIFO waits behind it (503 when full, like
 * the argon2 hasher), and an evaluation past `timeoutMs` is cut off: the
 * worker is terminated and replaced, and the password refused as too weak.
 */
export class StrengthEstimator {
  readonly #queue: Job[] = [];
  #worker: Worker | null = null;
  #ready = false;
  #current: Job | null = null;
  #timer: NodeJS.Timeout | null = null;
  #nextId = 1;
  #currentId = 0;
  #closed = false;

  constructor(private readonly options: StrengthEstimatorOptions) {}

  estimate(password: string, userInputs: readonly string[]): Promise<StrengthResult> {
    if (this.#closed) return Promise.reject(new Error('strength estimator closed'));
    if (this.#queue.length >= this.options.queueLimit) {
      return Promise.reject(new RampartError('server_busy', { detail: 'password strength queue full', headers: { 'Retry-After': '1' } }));
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ password, userInputs: [...userInputs], resolve, reject });
      // Pending work keeps the process alive; an idle worker does not.
      this.#ensureWorker().ref();
      this.#pump();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.reject(new Error('strength estimator closed'));
    const worker = this.#worker;
    this.#worker = null;
    if (worker) await worker.terminate();
  }

  /** Starts the worker now, so the first password does not wait for the dictionaries to load. */
  warm(): void {
    if (!this.#closed) this.#ensureWorker();
  }

  #pump(): void {
    if (this.#current || this.#queue.length === 0 || this.#closed) return;
    const worker = this.#ensureWorker();
    // The budget is for scoring, not for starting a worker (tsx + dictionaries take a while).
    if (!this.#ready) return;
    const job = this.#queue.shift()!;
    this.#current = job;
    this.#currentId = this.#nextId++;
    this.#timer = setTimeout(() => this.#abandon(), this.options.timeoutMs);
    worker.postMessage({ id: this.#currentId, password: job.password, userInputs: job.userInputs });
  }

  #finish(outcome: { result?: StrengthResult; error?: unknown }): void {
    const job = this.#current;
    if (!job) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#current = null;
    if (outcome.result) job.resolve(outcome.result);
    else job.reject(outcome.error);
    if (this.#queue.length === 0) this.#worker?.unref();
    this.#pump();
  }

  #abandon(): void {
    const worker = this.#worker;
    this.#worker = null;
    this.#ready = false;
    void worker?.terminate();
    this.#finish({ result: UNSCORED });
    // A fresh worker for whoever comes next.
    this.warm();
  }

  #ensureWorker(): Worker {
    if (this.#worker) return this.#worker;
    const worker = spawnStrengthWorker();
    worker.unref();
    worker.on('message', (message: { ready?: boolean; id?: number; result?: StrengthResult; error?: string }) => {
      if (worker !== this.#worker) return;
      if (message.ready) {
        this.#ready = true;
        this.#pump();
        return;
      }
      if (message.id !== this.#currentId) return;
      this.#finish(message.result ? { result: message.result } : { error: new Error(message.error ?? 'strength worker failed') });
    });
    const fail = (error: Error) => {
      if (worker !== this.#worker) return;
      this.#worker = null;
      this.#ready = false;
      // A worker that cannot start fails the waiting job rather than leaving it hanging.
      const job = this.#current ?? this.#queue.shift();
      if (job && !this.#current) this.#current = job;
      this.#finish({ error });
    };
    worker.on('error', fail);
    worker.on('exit', () => fail(new Error('strength worker exited')));
    this.#worker = worker;
    this.#ready = false;
    return worker;
  }
}

/**
 * The worker runs TypeScript through tsx like the main thread (`bin/rampart.js`
 * has no build step); loader hooks are per thread, so the worker registers its own.
 */
function spawnStrengthWorker(): Worker {
  const entry = new URL('./strength-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `
    const { workerData } = require('node:worker_threads');
    import(workerData.tsx).then((api) => { api.register(); return import(workerData.entry); });
  `;
  return new Worker(bootstrap, { eval: true, workerData: { tsx, entry } });
}
