import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { OPTIONS, type OptionDef } from './schema.js';

/** The validated, frozen configuration. Derived paths are resolved here once. */
export interface Config {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  /** null until the listening port is known; see `resolvePublicUrl`. */
  readonly publicUrl: string | null;
  readonly databaseUrl: string | null;
  readonly piiDatabaseUrl: string | null;
  readonly masterKeyFile: string;
  /** Keys from a secrets manager instead of the key file (see src/crypto/master-key-command.ts). */
  readonly masterKeyCommand: string | null;
  readonly masterKeyCommandTimeoutSeconds: number;
  readonly masterKeyCommandRefreshSeconds: number;
  readonly tlsCertFile: string | null;
  readonly tlsKeyFile: string | null;
  readonly insecurePlainHttpOnLoopback: boolean;
  readonly insecureAllowEternalApiTokens: boolean;
  readonly accessTokenTtlSeconds: number;
  readonly accessTokenAudience: string | null;
  readonly signingKeyRotationDays: number;
  readonly trustedProxies: readonly string[];
  /** `*` or `role:role` pairs; see src/staff/staff-roles.ts. */
  readonly staffConflictingRoles: readonly string[];
  readonly corsOrigins: readonly string[];
  readonly logLevel: string;
  readonly bodyLimitBytes: number;
  readonly sessionIdleTimeoutMinutes: number;
  readonly sessionAbsoluteTimeoutHours: number;
  readonly passwordMinLength: number;
  readonly passwordMinStrength: number;
  /** Every account needs a second factor (a platform baseline under the org policies). */
  readonly mfaRequiredForAll: boolean;
  readonly mfaRequiredGraceHours: number;
  readonly argon2MemoryKiB: number;
  readonly argon2Iterations: number;
  readonly passwordHashConcurrency: number;
  readonly passwordHashQueue: number;
  readonly smtpUrl: string | null;
  readonly insecureSmtpWithoutTls: boolean;
  /** PEM CA bundle trusted for the SMTP relay, or null for the system CAs. */
  readonly smtpCaFile: string | null;
  readonly redisCaFile: string | null;
  /** Client certificate and key for a Redis that authenticates clients by certificate. */
  readonly redisCertFile: string | null;
  readonly redisKeyFile: string | null;
  /** k-anonymity range API base URL, or null (offline lists only). */
  readonly breachedPasswordApiUrl: string | null;
  readonly breachedPasswordTimeoutMs: number;
  readonly mailFrom: string;
  readonly productName: string;
  readonly securityContact: string | null;
  readonly redisUrl: string | null;
  readonly redisKeyPrefix: string;
  readonly rateLimitAnonPerMinute: number;
  readonly rateLimitAuthPerMinute: number;
  readonly rateLimitAccountPerMinute: number;
  readonly passwordResetMailsPerHour: number;
  readonly signupEmailTakenPerHour: number;
  readonly insecureDisableRateLimits: boolean;
  readonly insecureBackendsWithoutTls: boolean;
  readonly migrateOnStart: boolean;
  readonly webhookAllowedHosts: readonly string[];
  readonly loginBackoffAfterFailures: number;
  readonly loginAccountBackoffAfterFailures: number;
  readonly loginBackoffMaxSeconds: number;
  readonly auditRetentionDays: number | null;
  readonly jobPollIntervalMs: number;
  readonly maxOrgsPerUser: number;
  readonly maxPendingInvitationsPerOrg: number;
  readonly insecureWebhooksToPrivateNetworks: boolean;
  readonly metricsPort: number;
  readonly metricsHost: string;
  /** Where each value came from, for doctor. */
  readonly sources: Readonly<Record<string, 'flag' | 'env' | 'file' | 'default'>>;
  /** Secret options read from a file named by `<ENV>_FILE` (key → path), for doctor. */
  readonly secretFiles: Readonly<Record<string, string>>;
}

export interface ConfigSources {
  /** Parsed command-line flags, keyed by flag name (`data-dir`) — strings or booleans. */
  flags?: Record<string, string | boolean | undefined>;
  env?: NodeJS.ProcessEnv;
  /** Explicit `--config FILE`; otherwise DATA_DIR/rampart.config.json when it exists. */
  configFile?: string;
}

const ENV_PREFIX = 'RAMPART_';

export function loadConfig(sources: ConfigSources = {}): Config {
  const flags = sources.flags ?? {};
  const env = sources.env ?? process.env;
  const known = new Set(OPTIONS.map((option) => option.env));
  for (const name of Object.keys(env)) {
    // A typo in a RAMPART_ variable would otherwise silently leave a default in force.
    if (name.startsWith(ENV_PREFIX) && !known.has(name) && name !== 'RAMPART_CONFIG') {
      throw new ConfigError(`unknown environment variable ${name}`);
    }
  }

  // The data dir decides where the default config file lives, so resolve it first.
  const dataDirOption = (OPTIONS as readonly OptionDef[]).find((option) => option.key === 'dataDir')!;
  const dataDirRaw = pick(dataDirOption, flags, env, {});
  const defaultDataDir = resolve(String(dataDirRaw.value ?? dataDirOption.default));
  const configPath = sources.configFile ?? (typeof flags['config'] === 'string' ? flags['config'] : undefined) ?? env['RAMPART_CONFIG'];
  const file = readConfigFile(configPath ?? join(defaultDataDir, 'rampart.config.json'), configPath !== undefined);

  const resolved: Record<string, unknown> = {};
  const origin: Record<string, 'flag' | 'env' | 'file' | 'default'> = {};
  const secretFiles: Record<string, string> = {};
  for (const option of OPTIONS as readonly OptionDef[]) {
    const secretFile = option.secret ? env[`${option.env}_FILE`] || null : null;
    const { value, source } = secretFile !== null ? fromSecretFile(option, env, secretFile) : pick(option, flags, env, file);
    if (secretFile !== null) secretFiles[option.key] = resolve(secretFile);
    origin[option.key] = source;
    resolved[option.key] = value === undefined ? null : coerce(option, value, source);
  }
  for (const option of OPTIONS as readonly OptionDef[]) {
    if (resolved[option.key] === null) {
      const fallback = typeof option.default === 'function' ? option.default(resolved) : option.default;
      resolved[option.key] = fallback;
    }
  }
  const dataDir = resolve(String(resolved['dataDir']));
  resolved['dataDir'] = dataDir;
  if (resolved['masterKeyCommand'] !== null && resolved['masterKeyFile'] !== null) {
    throw new ConfigError('MASTER_KEY_FILE and MASTER_KEY_COMMAND exclude each other: the master keys come from one place');
  }
  resolved['masterKeyFile'] = resolve(String(resolved['masterKeyFile'] ?? join(dataDir, 'keys', 'master.key')));
  const cores = availableParallelism();
  resolved['passwordHashConcurrency'] ??= cores;
  resolved['passwordHashQueue'] ??= 8 * Number(resolved['passwordHashConcurrency']);
  for (const option of OPTIONS as readonly OptionDef[]) {
    const value = resolved[option.key];
    if (value === null || value === undefined) continue;
    if (option.type === 'int') {
      const n = value as number;
      const where = nameOf(option, origin[option.key] ?? 'default');
      if (option.min !== undefined && n < option.min) throw new ConfigError(`${where} must be at least ${option.min}`);
      if (option.max !== undefined && n > option.max) throw new ConfigError(`${where} must be at most ${option.max}`);
    }
    option.validate?.(value, resolved);
  }
  resolved['sources'] = Object.freeze(origin);
  resolved['secretFiles'] = Object.freeze(secretFiles);
  return Object.freeze(resolved) as unknown as Config;
}

/** PUBLIC_URL, or https://localhost:<port> once the listening port is known. */
export function resolvePublicUrl(config: Config, listeningPort: number): string {
  if (config.publicUrl) return new URL(config.publicUrl).origin;
  const scheme = config.insecurePlainHttpOnLoopback ? 'http' : 'https';
  return `${scheme}://localhost:${listeningPort}`;
}

/**
 * `<ENV>_FILE`: a secret option's value from a file (Docker and Kubernetes secrets, a Vault
 * agent's rendered file), so it is in no environment or config file. One trailing newline is
 * dropped. Errors name the variable and the path, never what the file holds.
 */
function fromSecretFile(option: OptionDef, env: NodeJS.ProcessEnv, path: string): { value: unknown; source: 'env' } {
  const name = `${option.env}_FILE`;
  if (env[option.env] !== undefined && env[option.env] !== '') throw new ConfigError(`${option.env} and ${name} exclude each other`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`${name}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '' || /[\r\n]/.test(value)) throw new ConfigError(`${name}: ${path} must hold the value on one line`);
  return { value, source: 'env' };
}

function pick(
  option: OptionDef,
  flags: Record<string, string | boolean | undefined>,
  env: NodeJS.ProcessEnv,
  file: Record<string, unknown>,
): { value: unknown; source: 'flag' | 'env' | 'file' | 'default' } {
  if (option.flag && flags[option.flag] !== undefined) return { value: flags[option.flag], source: 'flag' };
  const fromEnv = env[option.env];
  if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, source: 'env' };
  if (Object.hasOwn(file, option.key)) return { value: file[option.key], source: 'file' };
  return { value: undefined, source: 'default' };
}

/** How the operator set an option, for a refusal: the flag, the config file key, or the variable. */
function nameOf(option: OptionDef, source: string): string {
  return source === 'file' ? `config file key "${option.key}"` : source === 'flag' && option.flag ? `--${option.flag}` : option.env;
}

function coerce(option: OptionDef, value: unknown, source: string): unknown {
  const where = nameOf(option, source);
  switch (option.type) {
    case 'int': {
      if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
      if (typeof value === 'string' && /^\d{1,10}$/.test(value)) return Number(value);
      throw new ConfigError(`${where} must be a whole number`);
    }
    case 'bool': {
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      throw new ConfigError(`${where} must be true or false`);
    }
    case 'list': {
      if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value.map((item) => item.trim()).filter(Boolean);
      if (typeof value === 'string') return value.split(',').map((item) => item.trim()).filter(Boolean);
      throw new ConfigError(`${where} must be a comma-separated list`);
    }
    case 'string': {
      if (typeof value === 'string' && value.length <= 4096) return value;
      throw new ConfigError(`${where} must be a string`);
    }
  }
}

function readConfigFile(path: string, required: boolean): Record<string, unknown> {
  if (!existsSync(path)) {
    if (required) throw new ConfigError(`config file ${path} does not exist`);
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new ConfigError(`config file ${path} is not valid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must hold a JSON object`);
  }
  const keys = new Set(OPTIONS.map((option) => option.key));
  for (const key of Object.keys(parsed)) {
    if (!keys.has(key)) throw new ConfigError(`config file ${path}: unknown option "${key}"`);
  }
  return parsed as Record<string, unknown>;
}
