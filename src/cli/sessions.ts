import { Command } from 'commander';
import { ConfigError } from '../errors.js';
import { action, withCommonOptions, withServices } from './common.js';

const CLI_ACTOR = { type: 'system' as const, id: 'cli' };

export function sessionsCommand(): Command {
  const sessions = new Command('sessions').description('end sessions as an operator (ASVS V7.4.5); a running server refuses them at its next request');

  sessions.addCommand(withCommonOptions(new Command('end'))
    .description('end every session and pending MFA login step of one account (--user) or of every account (--all --yes); API tokens are kept; audited as sessions.ended_by_operator')
    .option('--user <email>', 'the account whose sessions end')
    .option('--all', 'every account (an incident: session secrets may have leaked)')
    .option('--yes', 'confirm --all')
    .option('--reason <text>', 'why, for the audit log')
    .action(action(async (options: Record<string, unknown>) => {
      const email = typeof options['user'] === 'string' ? options['user'] : null;
      const all = options['all'] === true;
      if ((email === null) === !all) throw new ConfigError('give either --user <email> or --all');
      if (all && options['yes'] !== true) throw new ConfigError('--all signs every user out: add --yes to confirm');
      const reason = typeof options['reason'] === 'string' ? options['reason'].slice(0, 200) : null;
      const { subject, ended } = await withServices(options, async (services) => {
        if (email === null) return { subject: 'every account', ended: await services.accounts.endSessions(null, CLI_ACTOR, reason) };
        const userId = await services.pii.findUserIdByEmail(email);
        if (!userId) throw new ConfigError('no account has that email');
        return { subject: userId, ended: await services.accounts.endSessions(userId, CLI_ACTOR, reason) };
      });
      process.stdout.write(`ended ${ended['sessions'] ?? 0} session(s) and ${ended['mfa_login_steps'] ?? 0} pending login step(s) of ${subject}\n`);
    })));

  return sessions;
}
