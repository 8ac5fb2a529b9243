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

export function iso(epochMilliseconds: number): string {
  return new Date(epochMilliseconds).toISOString();
}
