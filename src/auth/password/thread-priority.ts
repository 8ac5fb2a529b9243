import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Lowers the CPU priority of every thread of this process but the main one
 * (libuv's pool, where argon2id runs, and V8's helpers) by `niceness` steps. On a
 * box where password hashes saturate every core, the event loop then still gets
 * the CPU when it needs it: a login flood slows logins, not every other request.
 * Linux only (per-thread nice values via /proc/self/task); elsewhere, and when the
 * kernel refuses, nothing changes. Returns how many threads were changed.
 */
export function lowerHelperThreadPriority(niceness: number): number {
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
    if (!Number.isInteger(tid) || tid === process.pid) continue;
    try {
      setPriority(tid, Math.min(19, niceness));
      changed++;
    } catch {
      // A thread that ended meanwhile, or a kernel that says no: leave it.
    }
  }
  return changed;
}
