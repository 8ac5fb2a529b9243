import { Command } from 'commander';
import { auditCommand } from './audit.js';
import { doctorCommand } from './doctor.js';
import { keysCommand } from './keys.js';
import { migrateCommand } from './migrate.js';
import { reportCommand } from './report.js';
import { serveCommand } from './serve.js';
import { usersCommand } from './users-import.js';
import { sessionsCommand } from './sessions.js';
import { staffCommand } from './staff.js';

const program = new Command('rampart')
  .description('Rampart: self-hosted identity and product security for B2B SaaS')
  .showHelpAfterError()
  .addCommand(serveCommand(), { isDefault: true })
  .addCommand(migrateCommand())
  .addCommand(doctorCommand())
  .addCommand(reportCommand())
  .addCommand(auditCommand())
  .addCommand(keysCommand())
  .addCommand(usersCommand())
  .addCommand(staffCommand())
  .addCommand(sessionsCommand());

await program.parseAsync(process.argv);
