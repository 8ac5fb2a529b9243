import { Command } from 'commander';
import { checkControls, checkMasterKeyCommand } from '../doctor/controls.js';
import { action, configFrom, withCommonOptions } from './common.js';

export function doctorCommand(): Command {
  return withCommonOptions(new Command('doctor'))
    .description('check each security control against the current configuration; exits 1 if any is insecure')
    .option('--json', 'print the checks as JSON')
    .action(action(async (options: Record<string, unknown>) => {
      const { json, ...rest } = options;
      const config = configFrom(rest);
      const checks = checkControls(config);
      if (config.masterKeyCommand !== null) {
        const after = checks.findIndex((check) => check.control === 'Bind address');
        checks.splice(after + 1, 0, await checkMasterKeyCommand(config));
      }
      if (json) {
        process.stdout.write(`${JSON.stringify(checks, null, 2)}\n`);
      } else {
        const width = Math.max(...checks.map((check) => check.control.length));
        for (const check of checks) {
          process.stdout.write(`${check.status.toUpperCase().padEnd(4)}  ${check.control.padEnd(width)}  ${check.detail}\n`);
        }
      }
      if (checks.some((check) => check.status === 'fail')) process.exitCode = 1;
    }));
}
