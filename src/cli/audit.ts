import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { AuditLog, type VerifyResult } from '../audit/audit-log.js';
import { systemClock } from '../clock.js';
import type { Config } from '../config/load.js';
import { Keyring } from '../crypto/keyring.js';
import { openMasterKeys } from '../crypto/master-keys.js';
import { openStores, type Stores } from '../store/db.js';
import { action, configFrom, withCommonOptions } from './common.js';

/** Opens the main store and the audit log without starting a server. */
async function withAuditLog<T>(config: Config, body: (audit: AuditLog, stores: Stores) => Promise<T>): Promise<T> {
  const keys = await openMasterKeys(config, { create: false });
  const stores = openStores(config);
  try {
    const audit = new AuditLog(stores.main.db, new Keyring(stores.main.db, keys), systemClock);
    return await body(audit, stores);
  } finally {
    await stores.close();
  }
}

/** Walks the whole chain with a progress bar on stderr (shown on a terminal only). */
export async function verifyWithProgress(audit: AuditLog, stream: NodeJS.WriteStream = process.stderr): Promise<VerifyResult> {
  const bar = new cliProgress.SingleBar(
    { stream, format: 'verifying audit chain [{bar}] {percentage}% | {value}/{total} events | {eta_buffer}s left', hideCursor: true, etaBuffer: 50 },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  try {
    return await audit.verify({
      onStart: (total) => {
        bar.start(total, 0);
        started = true;
      },
      onProgress: (done) => bar.update(done),
    });
  } finally {
    if (started) bar.stop();
  }
}

export function auditCommand(): Command {
  const audit = new Command('audit').description('the hash-chained audit log');

  audit.addCommand(withCommonOptions(new Command('verify'))
    .description('walk the audit chain from its anchor to its head; exits 1 and names the first broken link')
    .option('--json', 'print the result as JSON')
    .action(action(async (options: Record<string, unknown>) => {
      const { json, ...rest } = options;
      const result = await withAuditLog(configFrom(rest), (log) => verifyWithProgress(log));
      if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
      if (result.broken) {
        const { seq, id, reason } = result.broken;
        throw new Error(`audit chain broken at seq ${seq}${id ? ` (${id})` : ''}: ${reason}`);
      }
      if (!json) {
        const range = result.headSeq >= result.firstSeq ? `seq ${result.firstSeq}..${result.headSeq}` : 'empty';
        process.stdout.write(`audit chain valid: ${result.count} events (${range}), head ${result.headHash}\n`);
      }
    })));

  audit.addCommand(withCommonOptions(new Command('export'))
    .description('print every audit event after --after SEQ (default: all) as NDJSON, oldest first, for shipping to a separate log store; each event carries prevHash and hash, so the receiver can check the chain continues what it already holds')
    .option('--after <seq>', 'only events with a greater seq (the last one already shipped)', '0')
    .action(action(async (options: Record<string, unknown>) => {
      const { after, ...rest } = options;
      const afterSeq = Number(after);
      if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw new Error('--after must be a whole number of at least 0');
      await withAuditLog(configFrom(rest), async (log) => {
        for await (const event of log.stream({}, afterSeq)) {
          if (!process.stdout.write(`${JSON.stringify(event)}\n`)) await new Promise((resolve) => process.stdout.once('drain', resolve));
        }
      });
    })));

  audit.addCommand(withCommonOptions(new Command('prune'))
    .description('delete audit events older than N days; the chain stays verifiable from its new anchor')
    .requiredOption('--older-than-days <n>', 'age in days (at least 1)')
    .action(action(async (options: Record<string, unknown>) => {
      const { olderThanDays, ...rest } = options;
      const days = Number(olderThanDays);
      if (!Number.isSafeInteger(days) || days < 1) throw new Error('--older-than-days must be a whole number of at least 1');
      const result = await withAuditLog(configFrom(rest), (log) =>
        log.prune(Date.now() - days * 86_400_000, { type: 'system', id: 'cli' }));
      process.stdout.write(`pruned ${result.deleted} audit events; the chain now starts at seq ${result.firstSeq}\n`);
    })));

  return audit;
}
