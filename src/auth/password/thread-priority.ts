import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';

/** Set by `bin/rampart.cjs` before any JavaScript used libuv's pool: the threads of Node and V8 themselves. */
const STARTUP_THREADS = Symbol.for('rampart.startupThreads');

/**
 * Lowers the CPU priority of this process's helper threads by `niceness` steps:
 * libuv's pool, where argon2id runs, and the worker threads. On a box where
 * password hashes saturate every core, the event loop then still gets the CPU
 * when it needs it: a login flood slows logins, not every other request.
 *
 * Spared: the main thread, and the threads that existed before any JavaScript ran
 * (`bin/rampart.cjs` records them; V8's garbage-collection helpers are among them).
 * A parallel scavenge on the event loop waits for those helpers; at the hashes'
 * priority they waited for a core, and the login flood's p99 in `npm run bench`
 * went with them. Started otherwise (tests, `bin/rampart.js`), every thread but the
 * main one is lowered. Linux only (per-thread nice values via /proc/self/task);
 * elsewhere, and when the kernel refuses, nothing changes. Returns how many threads
 * were changed.
 */
export function lowerHelperThreadPriority(niceness: number, spared: ReadonlySet<number> = startupThreads()): number {
  if (process.platform !== 'linux' || niceness <= 0) return 0;
  let changed = 0;
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return 0;
  }
  for (const task of tasks) {
    const tid = Number(task);
    if (!Number.isInteger(tid) || tid === process.pid || spared.has(tid)) continue;
    try {
      setPriority(tid, Math.min(19, niceness));
      changed++;
    } catch {
      // A thread that ended meanwhile, or a kernel that says no: leave it.
    }
  }
  return changed;
}

function startupThreads(): ReadonlySet<number> {
  const recorded = (globalThis as Record<symbol, unknown>)[STARTUP_THREADS];
  return recorded instanceof Set ? (recorded as Set<number>) : new Set();
}
