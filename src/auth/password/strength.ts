import { zxcvbn, zxcvbnOptions } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';
import * as english from '@zxcvbn-ts/language-en';

let configured = false;

/** Characters zxcvbn looks at. */
export const STRENGTH_MAX_LENGTH = 64;

function configure(): void {
  if (configured) return;
  zxcvbnOptions.setOptions({
    dictionary: { ...common.dictionary, ...english.dictionary },
    graphs: common.adjacencyGraphs,
    translations: english.translations,
    // Cost bounds (zxcvbn-ts issue #164: crafted inputs take seconds). Levenshtein
    // matching multiplied the cost of every password by ~100 for little gain;
    // l33t variants ("P@ssw0rd") are still caught by the l33t matcher, whose
    // substitution combinations are capped at 4 (the default 100 explodes on
    // inputs like "p4$$w0rd…"); a longer password is judged by its first 64
    // characters. The worker's time limit (StrengthEstimator) bounds the rest.
    useLevenshteinDistance: false,
    l33tMaxSubstitutions: 4,
    maxLength: STRENGTH_MAX_LENGTH,
  });
  configured = true;
}

export interface StrengthResult {
  /** zxcvbn score 0-4. */
  score: number;
  /** The password is, or is built on, an entry of the common-password lists. */
  isCommon: boolean;
  /** The password contains one of the user's own words (email, name, org, product). */
  containsUserInfo: boolean;
  /** zxcvbn's human advice, for the error message. */
  suggestions: string[];
  /** zxcvbn did not finish in time (a pathological input); the password counts as too weak. */
  timedOut?: boolean;
}

/** Scores a password with zxcvbn, the user's context words counting as known words. */
export function estimateStrength(password: string, userInputs: readonly string[]): StrengthResult {
  configure();
  const inputs = userInputs.filter((input) => input.length >= 3).map((input) => input.toLowerCase());
  const result = zxcvbn(password, inputs);
  let isCommon = false;
  let containsUserInfo = false;
  for (const match of result.sequence) {
    if (match.pattern !== 'dictionary') continue;
    const dictionaryName = (match as { dictionaryName?: string }).dictionaryName;
    const token = String((match as { token?: string }).token ?? '');
    // A common password that makes up most of the password (not a 4-letter word inside a passphrase).
    if (dictionaryName === 'passwords' && token.length >= Math.min(8, password.length) && token.length * 2 >= password.length) {
      isCommon = true;
    }
    if (dictionaryName === 'userInputs' && token.length >= 3) containsUserInfo = true;
  }
  return { score: result.score, isCommon, containsUserInfo, suggestions: result.feedback.suggestions };
}

/** Context words for a user: the email, its local part and domain label, the name's parts. */
export function userContextWords(email: string | null, name: string | null, extra: readonly string[] = []): string[] {
  const words = new Set<string>();
  if (email) {
    const lower = email.toLowerCase();
    words.add(lower);
    const [local, domain] = lower.split('@');
    if (local) {
      words.add(local);
      for (const part of local.split(/[._+-]+/)) words.add(part);
    }
    if (domain) words.add(domain.split('.')[0] ?? '');
  }
  if (name) for (const part of name.toLowerCase().split(/\s+/)) words.add(part);
  for (const word of extra) words.add(word.toLowerCase());
  return [...words].filter((word) => word.length >= 3);
}
