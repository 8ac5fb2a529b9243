import { BoundedMemo } from './memo.js';

/** The time source. Tests inject a manual clock; never sleep to test expiry. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to. */
export class ManualClock implements Clock {
  #now: number;

  constructor(start: number = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  advance(milliseconds: number): void {
    this.#now += milliseconds;
  }

  set(epochMilliseconds: number): void {
    this.#now = epochMilliseconds;
  }
}

/**
 * ISO 8601 (UTC, milliseconds) of an epoch time. The same instants (a session's
 * creation, its last activity) are formatted on every request, so recent results
 * are kept: a Date and its formatting cost more than the lookup.
 */
export function iso(epochMilliseconds: number): string {
  return isoMemo.get(epochMilliseconds, formatIso);
}

const isoMemo = new BoundedMemo<number, string>(4096);
const formatIso = (epochMilliseconds: number) => new Date(epochMilliseconds).toISOString();
