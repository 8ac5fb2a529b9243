import type { Clock } from '../clock.js';
import type { Config } from '../config/load.js';
import type { ServerSettingRepository } from '../store/repositories/server-settings.js';

/** The `server_settings` name of the instant MFA_REQUIRED_FOR_ALL took effect (epoch ms, decimal). */
export const MFA_REQUIRED_FOR_ALL_SINCE = 'mfa_required_for_all_since';

/**
 * When MFA_REQUIRED_FOR_ALL took effect for this deployment: the first start of
 * the server with the option on, stored once in the main store and shared by
 * every instance, so that a restart does not move the grace period of existing
 * accounts. null when the option is off; a server start with it off forgets the
 * instant, so switching it on again later gives existing accounts a fresh grace
 * period rather than locking them out at once.
 *
 * Only `serve` records or forgets (`record`): other commands (report, staff,
 * import…) may run with another environment and must not move the deployment's
 * instant; they read it, and take "now" when none is stored yet.
 */
export async function deploymentMfaSince(
  config: Pick<Config, 'mfaRequiredForAll'>, settings: ServerSettingRepository, clock: Clock, options: { record: boolean },
): Promise<number | null> {
  if (!config.mfaRequiredForAll) {
    if (options.record) await settings.delete(MFA_REQUIRED_FOR_ALL_SINCE);
    return null;
  }
  const now = clock.now();
  const value = options.record ? await settings.getOrInsert(MFA_REQUIRED_FOR_ALL_SINCE, String(now), now) : await settings.get(MFA_REQUIRED_FOR_ALL_SINCE);
  if (value === null) return now;
  const stored = Number(value);
  if (!Number.isSafeInteger(stored) || stored <= 0) throw new Error(`server_settings.${MFA_REQUIRED_FOR_ALL_SINCE} is not a time`);
  return stored;
}

/**
 * When the deployment-wide requirement reached one account: the later of its
 * creation and the switch-on. A user not yet created (signup) is reached now.
 */
export function deploymentMfaSinceForUser(switchedOnAt: number, createdAt: number | null, now: number): number {
  return Math.max(switchedOnAt, createdAt ?? now);
}
