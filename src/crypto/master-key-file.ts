import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { type KeyProvider, StaticKeyProvider, wrappingKeyId } from './key-provider.js';

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

export function loadMasterKeyFile({ path, create }: MasterKeyFileOptions): FileKeyProvider {
  if (!existsSync(path)) {
    if (!create) throw new ConfigError(`master key file ${path} does not exist`);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeAtomically(path, formatLine(newKeyId(), randomBytes(32)));
  }
  return new FileKeyProvider(path);
}

/**
 * A key provider over the master key file that follows rotations without a
 * restart: before wrapping it re-reads the file if it changed (so new wraps use
 * the newest key and never a retired one), and an unknown key id on unwrap
 * triggers a re-read (another instance or `rampart keys rotate-master` has
 * re-wrapped with a key this process has not seen yet).
 */
export class FileKeyProvider implements KeyProvider {
  #inner: StaticKeyProvider;
  #mtimeMs: number;

  constructor(private readonly path: string) {
    this.#inner = this.#read();
    this.#mtimeMs = statSync(path).mtimeMs;
  }

  get currentKeyId(): string {
    return this.#inner.currentKeyId;
  }

  keyIds(): readonly string[] {
    return this.#inner.keyIds();
  }

  async wrap(key: Uint8Array, aad: string): Promise<string> {
    this.#reloadIfChanged();
    return this.#inner.wrapSync(key, aad);
  }

  async unwrap(wrapped: string, aad: string): Promise<Buffer | null> {
    const id = wrappingKeyId(wrapped);
    if (id !== null && !this.#inner.keyIds().includes(id)) this.#reloadIfChanged();
    return this.#inner.unwrapSync(wrapped, aad);
  }

  #reloadIfChanged(): void {
    const mtimeMs = statSync(this.path).mtimeMs;
    if (mtimeMs === this.#mtimeMs) return;
    this.#inner = this.#read();
    this.#mtimeMs = mtimeMs;
  }

  #read(): StaticKeyProvider {
    assertPrivateFile(this.path);
    return new StaticKeyProvider(parseMasterKeyFile(readFileSync(this.path, 'utf8'), this.path));
  }
}

/** Prepends a new current key; older keys stay to unwrap existing data. Returns the new id. */
export function addMasterKey(path: string): string {
  assertPrivateFile(path);
  const existing = readFileSync(path, 'utf8');
  parseMasterKeyFile(existing, path);
  const id = newKeyId();
  writeAtomically(path, formatLine(id, randomBytes(32)) + existing);
  return id;
}

/** Removes the given keys from the file (never the current one). */
export function removeMasterKeys(path: string, ids: readonly string[]): void {
  assertPrivateFile(path);
  const keys = parseMasterKeyFile(readFileSync(path, 'utf8'), path);
  if (ids.includes(keys[0]!.id)) throw new Error('the current master key cannot be removed');
  writeAtomically(path, keys.filter((k) => !ids.includes(k.id)).map((k) => formatLine(k.id, k.key)).join(''));
}

/** A crash mid-write must never leave a truncated key file: write a 0600 sibling, fsync, rename over. */
function writeAtomically(path: string, text: string): void {
  const temporary = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
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
