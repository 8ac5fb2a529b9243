import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { createLogger } from '../logger.js';
import { createServices } from '../services.js';
import { parseImportLine, UserImporter } from '../users/user-import.js';
import { ORPHAN_AGE_MS } from '../users/orphan-profiles.js';
import { action, configFrom, withCommonOptions } from './common.js';

/** Files with more lines than this show a progress bar (on a terminal). */
const PROGRESS_THRESHOLD = 200;

async function countLines(file: string): Promise<number> {
  let lines = 0;
  for await (const _line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) lines++;
  return lines;
}

/**
 * `rampart users import FILE`: JSON lines `{"email","name","passwordHash"}`.
 * A bad line is reported by its number and reason, never with its hash; an
 * address that already has an account is skipped. Exits 1 when a line failed.
 */
export function usersCommand(): Command {
  const users = new Command('users').description('accounts');
  users.addCommand(withCommonOptions(new Command('import'))
    .description('create accounts from JSON lines {"email","name","passwordHash"} (bcrypt $2a$/$2b$/$2y$ or argon2 PHC); hashes are upgraded to argon2id at each first login')
    .argument('<file>', 'JSON-lines file, one account per line')
    .option('--accept-weak-bcrypt', 'also import bcrypt hashes of cost below 10 (kept only until each user\'s first login, which re-hashes with argon2id); without it such lines fail with their reason')
    .action(action(async (file: string, options: Record<string, unknown>) => {
      const { acceptWeakBcrypt, ...rest } = options;
      const config = configFrom(rest);
      process.umask(0o077);
      await access(file).catch(() => {
        throw new Error(`cannot read ${file}`);
      });
      const services = await createServices(config, createLogger('warn', process.stderr));
      const importer = new UserImporter(services.stores.main.db, services.users, services.pii, services.events, services.clock);
      const counts = { imported: 0, skipped: 0, failed: 0 };
      const total = await countLines(file);
      const bar = total > PROGRESS_THRESHOLD && process.stderr.isTTY
        ? new cliProgress.SingleBar({ stream: process.stderr, format: 'importing [{bar}] {percentage}% | {value}/{total} lines | {eta}s left', hideCursor: true }, cliProgress.Presets.shades_classic)
        : null;
      bar?.start(total, 0);
      const report = (message: string) => {
        if (bar) bar.stop();
        process.stderr.write(`${message}\n`);
        if (bar) bar.start(total, lineNumber);
      };
      let lineNumber = 0;
      try {
        for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
          lineNumber++;
          bar?.update(lineNumber);
          if (line.trim() === '') continue;
          const parsed = parseImportLine(line, { acceptWeakBcrypt: acceptWeakBcrypt === true });
          if (!parsed.ok) {
            counts.failed++;
            report(`line ${lineNumber}: ${parsed.reason}`);
            continue;
          }
          try {
            const outcome = await importer.importRecord(parsed.record);
            if (outcome === 'imported') counts.imported++;
            else if (outcome === 'exists') {
              counts.skipped++;
              report(`line ${lineNumber}: an account with this email already exists; skipped`);
            } else {
              // A profile without an account, minutes old: a signup in progress, or an import or
              // signup that crashed between the two stores. Not "already there": run again later.
              counts.failed++;
              report(`line ${lineNumber}: not imported (the address has a profile without an account, under ${ORPHAN_AGE_MS / 60_000} minutes old: a signup in progress or an interrupted one; run the import again later)`);
            }
          } catch (error) {
            counts.failed++;
            report(`line ${lineNumber}: not imported (${error instanceof Error ? error.message.split('\n')[0] : 'error'})`);
          }
        }
        bar?.stop();
        await importer.recordRun(counts);
      } finally {
        await services.close();
      }
      process.stdout.write(`imported ${counts.imported}, skipped ${counts.skipped} (already there), failed ${counts.failed}\n`);
      if (counts.failed > 0) throw new Error(`${counts.failed} line(s) could not be imported; see above`);
    })));
  return users;
}
