import type { Kysely } from 'kysely';
import { type Clock, iso } from '../clock.js';
import type { Config } from '../config/load.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { ServerSettingRepository } from '../store/repositories/server-settings.js';
import type { MainDB } from '../store/schema.js';

/** The `server_settings` name of the instant MFA_REQUIRED_FOR_ALL took effect (epoch ms, decimal). */
export const MFA_REQUIRED_FOR_ALL_SINCE = 'mfa_required_for_all_since';

/** Where `serve` records a change of the setting: the main store and the audited event stream. */
export interface DeploymentSettingsRecorder {
  record: true;
  db: Kysely<MainDB>;
  events: SecurityEvents;
}

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
 * instant; they read it, and take "now" when none is stored yet. A start that
 * switches the requirement on or off records `server_setting.changed` in the
 * transaction that changes the row: it decides who may sign in without a second
 * factor, so the switch belongs in the audit chain, not only in a log line.
 * Of instances starting together, only the one whose write changed the row records it.
 */
export async function deploymentMfaSince(
  config: Pick<Config, 'mfaRequiredForAll'>, settings: ServerSettingRepository, clock: Clock, options: { record: false } | DeploymentSettingsRecorder,
): Promise<number | null> {
  if (!options.record) {
    if (!config.mfaRequiredForAll) return null;
    const value = await settings.get(MFA_REQUIRED_FOR_ALL_SINCE);
    return value === null ? clock.now() : parseSince(value);
  }
  const { db, events } = options;
  return db.transaction().execute(async (trx) => {
    const changed = (details: Record<string, unknown>) => events.record({
      action: 'server_setting.changed', actor: { type: 'system', id: null }, outcome: 'success', details: { setting: 'MFA_REQUIRED_FOR_ALL', ...details },
    }, trx);
    if (!config.mfaRequiredForAll) {
      if (await settings.delete(MFA_REQUIRED_FOR_ALL_SINCE, trx)) await changed({ enabled: false });
      return null;
    }
    const now = clock.now();
    if (await settings.insertIfAbsent(MFA_REQUIRED_FOR_ALL_SINCE, String(now), now, trx)) {
      await changed({ enabled: true, since: iso(now) });
      return now;
    }
    return parseSince((await settings.get(MFA_REQUIRED_FOR_ALL_SINCE, trx))!);
  });
}

function parseSince(value: string): number {
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
