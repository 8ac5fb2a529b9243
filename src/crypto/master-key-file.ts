import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { StaticKeyProvider } from './key-provider.js';

/**
 * The master key file: one key per line, `<id> <base64url 32 bytes>`, the first
 * line current, later lines older keys kept to unwrap what they wrapped.
 * Created with mode 0600 on first start. A key file that other users can read
 * refuses start-up: a world-readable master key is no key at all.
 */
export interface MasterKeyFileOptions {
  path: string;
  /** Create the file when it does not exist (true for serve/migrate, false for doctor). */
  create: boolean;
}

export function loadMasterKeyFile({ path, create }: MasterKeyFileOptions): StaticKeyProvider {
  if (!existsSync(path)) {
    if (!create) throw new ConfigError(`master key file ${path} does not exist`);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, formatLine(newKeyId(), randomBytes(32)), { mode: 0o600, flag: 'wx' });
  }
  assertPrivateFile(path);
  return new StaticKeyProvider(parseMasterKeyFile(readFileSync(path, 'utf8'), path));
}

/** Prepends a new current key; older keys stay to unwrap existing data. Returns the new id. */
export function addMasterKey(path: string): string {
  assertPrivateFile(path);
  const existing = readFileSync(path, 'utf8');
  parseMasterKeyFile(existing, path);
  const id = newKeyId();
  writeFileSync(path, formatLine(id, randomBytes(32)) + existing, { mode: 0o600 });
  chmodSync(path, 0o600);
  return id;
}

export function parseMasterKeyFile(text: string, path = 'master key file'): Array<{ id: string; key: Buffer }> {
  const keys: Array<{ id: string; key: Buffer }> = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const match = /^([A-Za-z0-9_-]{1,64})\s+([A-Za-z0-9_-]{43})$/.exec(trimmed);
    if (!match) throw new ConfigError(`${path}: each line must be "<id> <base64url 32-byte key>"`);
    const key = Buffer.from(match[2]!, 'base64url');
    if (key.length !== 32) throw new ConfigError(`${path}: keys must be 32 bytes`);
    keys.push({ id: match[1]!, key });
  }
  if (keys.length === 0) throw new ConfigError(`${path} holds no key`);
  return keys;
}

/** Whether group or others can read, write or run the file. */
export function isFileShared(path: string): boolean {
  return (statSync(path).mode & 0o077) !== 0;
}

function assertPrivateFile(path: string): void {
  if (isFileShared(path)) {
    throw new ConfigError(`${path} is accessible to other users; run: chmod 600 ${path}`);
  }
}

function newKeyId(): string {
  return `mk${new Date().toISOString().slice(0, 10).replaceAll('-', '')}${randomBytes(3).toString('hex')}`;
}

function formatLine(id: string, key: Buffer): string {
  return `${id} ${key.toString('base64url')}\n`;
}
