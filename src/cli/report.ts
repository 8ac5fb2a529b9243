import { Command } from 'commander';
import { createLogger } from '../logger.js';
import { gatherLiveFacts } from '../report/live-facts.js';
import { buildReport, renderReportMarkdown } from '../report/questionnaire.js';
import { createServices } from '../services.js';
import { action, configFrom, withCommonOptions } from './common.js';

export function reportCommand(): Command {
  return withCommonOptions(new Command('report'))
    .description('answer the security questionnaire from the live configuration, each answer naming the tests that prove it')
    .option('--json', 'print JSON instead of Markdown')
    .action(action(async (options: Record<string, unknown>) => {
      const { json, ...rest } = options;
      const config = configFrom(rest);
      process.umask(0o077);
      const services = await createServices(config, createLogger('warn'));
      try {
        const items = buildReport(config, await gatherLiveFacts(services.stores.main.db));
        const generatedAt = new Date(services.clock.now()).toISOString();
        process.stdout.write(json ? `${JSON.stringify({ generatedAt, items }, null, 2)}\n` : renderReportMarkdown(items, generatedAt));
      } finally {
        await services.close();
      }
    }));
}
