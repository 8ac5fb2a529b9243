// Regenerates docs/events.md from src/events/catalogue.ts: `npm run docs:events`.
import { writeFileSync } from 'node:fs';
import { renderEventCatalogue } from '../src/events/catalogue-doc.js';

writeFileSync(new URL('../docs/events.md', import.meta.url), renderEventCatalogue());
