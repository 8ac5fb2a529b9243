import { EVENT_CATALOGUE } from './catalogue.js';

/** docs/events.md, generated from the catalogue (`npm run docs:events`); a test keeps the two equal. */
export function renderEventCatalogue(): string {
  const lines = [
    '# Security event catalogue',
    '',
    '<!-- Generated from src/events/catalogue.ts by `npm run docs:events`; do not edit by hand. -->',
    '',
    'Every security-relevant event is recorded through `services.events.record()` with one of',
    'these actions (`noun.past_verb`). The list is closed and stable: a shipped name is never',
    'renamed or reused. Each event is appended to the hash-chained audit log with',
    '`{id, seq, time, orgId, actor:{type, id}, action, target:{type, id}, ip, userAgent, outcome,',
    'details, requestId, prevHash, hash}`, where `actor.type` is `user`, `token`, `staff`, `system`',
    'or `anonymous`, `outcome` is `success`, `failure` or `denied`, and',
    '`hash = SHA-256(prevHash || canonical JSON of the event without prevHash and hash)`',
    '(canonical JSON: RFC 8785 member order, no whitespace; the first `prevHash` is 64 zeros).',
    '',
    '| action | meaning |',
    '|---|---|',
    ...Object.entries(EVENT_CATALOGUE)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([action, meaning]) => `| \`${action}\` | ${meaning.replace(/\|/g, '\\|')} |`),
    '',
  ];
  return lines.join('\n');
}
