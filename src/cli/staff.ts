import { Command } from 'commander';
import { STAFF_ROLES } from '../staff/staff-roles.js';
import { action, withCommonOptions, withServices } from './common.js';

const roleHelp = `one of ${STAFF_ROLES.join(', ')}`;

export function staffCommand(): Command {
  const staff = new Command('staff').description('staff separation of roles: grant or revoke a dormant staff role (assumed later with POST /v1/admin/assume)');

  staff.addCommand(withCommonOptions(new Command('grant'))
    .description('grant a staff role to the account with this email (the account must have a second factor)')
    .argument('<email>', 'the staff member\'s account email')
    .argument('<role>', roleHelp)
    .action(action(async (email: string, role: string, options: Record<string, unknown>) => {
      const { userId, granted } = await withServices(options, (services) => services.staff.grant(email, role, 'cli'));
      process.stdout.write(granted ? `granted ${role} to ${userId}\n` : `${userId} already holds ${role}\n`);
    })));

  staff.addCommand(withCommonOptions(new Command('revoke'))
    .description('revoke a staff role; a session that assumed it loses it at once')
    .argument('<email>', 'the staff member\'s account email')
    .argument('<role>', roleHelp)
    .action(action(async (email: string, role: string, options: Record<string, unknown>) => {
      const { userId, revoked } = await withServices(options, (services) => services.staff.revoke(email, role, 'cli'));
      process.stdout.write(revoked ? `revoked ${role} from ${userId}\n` : `${userId} did not hold ${role}\n`);
    })));

  return staff;
}
