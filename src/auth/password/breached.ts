import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, register } from 'prom-client';
import { normalizePassword } from './hasher.js';

export interface BreachedPasswordOptions {
  /** Base URL of a k-anonymity range API; the 5-hex-digit prefix is appended (`…/range/ABCDE`). */
  url: string;
  timeoutMs: number;
  logger: Logger;
}

/**
 * Counts range-API look-ups that failed or timed out, so a silent fail-open is
 * visible on the metrics endpoint (registered once in prom-client's default registry).
 */
function failureCounter(): Counter<'reason'> {
  const name = 'rampart_breached_password_check_failures_total';
  const existing = register.getSingleMetric(name) as Counter<'reason'> | undefined;
  return existing ?? new Counter({
    name,
    help: 'Breached-password range look-ups that failed open (unreachable, slow or malformed answer)',
    labelNames: ['reason'],
  });
}

/**
 * Checks a password against a breach corpus through the k-anonymity range
 * protocol (ASVS V6.2.12): only the first 5 hex digits of the password's SHA-1
 * leave the process; the service answers every suffix it knows under that
 * prefix (`SUFFIX:COUNT` lines) and the match is made here. Padding entries
 * (count 0, `Add-Padding: true`) hide the answer's true size on the wire.
 *
 * It fails open: when the service is unreachable, slow or answers nonsense the
 * password is judged by the offline lists alone, with a log line and a metric,
 * so an outage of a third party never blocks signups or resets.
 */
export class BreachedPasswordChecker {
  readonly #failures = failureCounter();

  constructor(private readonly options: BreachedPasswordOptions) {}

  /** true: seen in a breach; false: not seen; null: unknown (the check failed open). */
  async isBreached(password: string): Promise<boolean | null> {
    // SHA-1 is what the range protocol is keyed by; it protects nothing here (only 20 bits leave).
    const digest = createHash('sha1').update(normalizePassword(password), 'utf8').digest('hex').toUpperCase();
    const prefix = digest.slice(0, 5);
    const suffix = digest.slice(5);
    let body: string;
    try {
      const response = await fetch(new URL(prefix, this.#baseUrl()), {
        headers: { 'Add-Padding': 'true', 'User-Agent': 'rampart' },
        signal: AbortSignal.timeout(this.options.timeoutMs),
        redirect: 'error',
      });
      if (!response.ok) return this.#failOpen('status', `HTTP ${response.status}`);
      body = await response.text();
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      return this.#failOpen(timedOut ? 'timeout' : 'unreachable', error instanceof Error ? error.message : String(error));
    }
    let wellFormed = false;
    for (const line of body.split('\n')) {
      const match = /^([0-9A-Fa-f]{35}):(\d+)\s*$/.exec(line.trim());
      if (!match) continue;
      wellFormed = true;
      if (match[1]!.toUpperCase() === suffix && Number(match[2]) > 0) return true;
    }
    if (!wellFormed && body.trim().length > 0) return this.#failOpen('malformed', 'no SUFFIX:COUNT line in the answer');
    return false;
  }

  #baseUrl(): string {
    return this.options.url.endsWith('/') ? this.options.url : `${this.options.url}/`;
  }

  #failOpen(reason: string, detail: string): null {
    this.#failures.inc({ reason });
    this.options.logger.warn({ reason, detail }, 'breached-password check failed open; the offline lists still apply');
    return null;
  }
}
