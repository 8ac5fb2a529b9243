import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError } from '../errors.js';
import { loadConfig, resolvePublicUrl } from './load.js';
import { OPTIONS } from './schema.js';

function dir(): string {
  return mkdtempSync(join(tmpdir(), 'rampart-config-'));
}

describe('configuration', () => {
  test('secure defaults: loopback, TLS, 8443, data dir files', () => {
    const dataDir = dir();
    const config = loadConfig({ env: { RAMPART_DATA_DIR: dataDir }, flags: {} });
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 8443);
    assert.equal(config.insecurePlainHttpOnLoopback, false);
    assert.equal(config.masterKeyFile, join(dataDir, 'keys', 'master.key'));
    assert.equal(config.databaseUrl, null);
    assert.deepEqual(config.trustedProxies, []);
    assert.equal(config.passwordMinLength, 12);
    assert.equal(config.argon2MemoryKiB, 19456);
    assert.equal(config.sessionIdleTimeoutMinutes, 60);
    assert.equal(config.sessionAbsoluteTimeoutHours, 12);
    assert.ok(Object.isFrozen(config));
    assert.equal(resolvePublicUrl(config, 9443), 'https://localhost:9443');
  });

  test('flags win over env, env over the config file, the file over defaults', () => {
    const dataDir = dir();
    writeFileSync(join(dataDir, 'rampart.config.json'), JSON.stringify({ port: 1111, host: '127.0.0.2', logLevel: 'warn' }));
    const fileOnly = loadConfig({ env: { RAMPART_DATA_DIR: dataDir }, flags: {} });
    assert.equal(fileOnly.port, 1111);
    assert.equal(fileOnly.sources['port'], 'file');
    const envOverFile = loadConfig({ env: { RAMPART_DATA_DIR: dataDir, RAMPART_PORT: '2222' }, flags: {} });
    assert.equal(envOverFile.port, 2222);
    assert.equal(envOverFile.host, '127.0.0.2');
    const flagOverEnv = loadConfig({ env: { RAMPART_DATA_DIR: dataDir, RAMPART_PORT: '2222' }, flags: { port: '3333' } });
    assert.equal(flagOverEnv.port, 3333);
    assert.equal(flagOverEnv.sources['port'], 'flag');
    assert.equal(flagOverEnv.logLevel, 'warn');
    const explicitFile = join(dir(), 'custom.json');
    writeFileSync(explicitFile, JSON.stringify({ port: 4444 }));
    assert.equal(loadConfig({ env: { RAMPART_DATA_DIR: dataDir }, flags: { config: explicitFile } }).port, 4444);
  });

  test('insecure or unknown values stop start-up with a one-line reason', () => {
    const dataDir = dir();
    const refuse = (env: Record<string, string>, pattern: RegExp) => {
      assert.throws(() => loadConfig({ env: { RAMPART_DATA_DIR: dataDir, ...env }, flags: {} }), (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.match(error.message, pattern);
        assert.ok(!error.message.includes('\n'), 'one line');
        return true;
      });
    };
    refuse({ RAMPART_PORTT: '1' }, /unknown environment variable RAMPART_PORTT/);
    refuse({ RAMPART_INSECURE_PLAIN_HTTP_ON_LOOPBACK: 'true', RAMPART_HOST: '0.0.0.0' }, /loopback/);
    refuse({ PASSWORD_MIN_LENGTH: '6' }, /PASSWORD_MIN_LENGTH must be at least 8/);
    refuse({ ARGON2_MEMORY_KIB: '8192', ARGON2_ITERATIONS: '2' }, /OWASP/);
    refuse({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CA_FILE: new URL(import.meta.url).pathname }, /REDIS_CA_FILE needs a rediss:\/\/ REDIS_URL/);
    refuse({ REDIS_URL: 'rediss://127.0.0.1:6380', REDIS_CA_FILE: '/nonexistent/ca.pem' }, /REDIS_CA_FILE \/nonexistent\/ca.pem does not exist/);
    // Each row of the OWASP table, not a product of memory and passes: 35840 KiB once and 17920 KiB twice are both too weak.
    refuse({ ARGON2_MEMORY_KIB: '35840', ARGON2_ITERATIONS: '1' }, /argon2id with 1 iteration needs at least 47104 KiB/);
    refuse({ ARGON2_MEMORY_KIB: '19455', ARGON2_ITERATIONS: '2' }, /argon2id with 2 iterations needs at least 19456 KiB/);
    refuse({ ARGON2_MEMORY_KIB: '12287', ARGON2_ITERATIONS: '3' }, /needs at least 12288 KiB/);
    for (const [memory, iterations] of [['47104', '1'], ['19456', '2'], ['12288', '3'], ['9216', '4'], ['7168', '5'], ['7168', '20']]) {
      assert.equal(loadConfig({ env: { RAMPART_DATA_DIR: dataDir, ARGON2_MEMORY_KIB: memory!, ARGON2_ITERATIONS: iterations! }, flags: {} }).argon2MemoryKiB, Number(memory));
    }
    refuse({ RAMPART_PORT: 'eighty' }, /whole number/);
    refuse({ RAMPART_PORT: '70000' }, /at most 65535/);
    // The reason names what the operator typed: the flag, not the variable it stands for.
    for (const [port, reason] of [['abc', /^--port must be a whole number$/], ['70000', /^--port must be at most 65535$/]] as const) {
      assert.throws(() => loadConfig({ env: { RAMPART_DATA_DIR: dataDir }, flags: { port } }), (error: unknown) => error instanceof ConfigError && reason.test(error.message));
    }
    refuse({ PUBLIC_URL: 'http://example.com' }, /https/);
    refuse({ PUBLIC_URL: 'https://example.com/path' }, /origin only/);
    refuse({ DATABASE_URL: 'mysql://x' }, /postgres/);
    refuse({ DATABASE_URL: 'postgres://a/b?sslmode=verify-full', PII_DATABASE_URL: 'postgres://a/b?sslmode=verify-full' }, /must differ/);
    refuse({ TRUSTED_PROXIES: '10.0.0.1/8' }, /TRUSTED_PROXIES/);
    refuse({ TRUSTED_PROXIES: 'not-an-ip' }, /TRUSTED_PROXIES/);
    // A range holding every client lets anyone write their own address; ::ffff:0:0/96 is every IPv4 client.
    for (const everyone of ['0.0.0.0/0', '::/0', '::ffff:0:0/96', '10.0.0.0/8,::/64']) refuse({ TRUSTED_PROXIES: everyone }, /TRUSTED_PROXIES: .* covers every IPv(4|6) address/);
    const proxies = ['10.0.0.0/8', '::ffff:192.168.0.0/112', '2001:db8::/32', '0.0.0.0/1'];
    assert.deepEqual(loadConfig({ env: { RAMPART_DATA_DIR: dataDir, TRUSTED_PROXIES: proxies.join(',') }, flags: {} }).trustedProxies, proxies);
    refuse({ CORS_ORIGINS: 'http://app.example.com' }, /https/);
    refuse({ CORS_ORIGINS: '*' }, /CORS_ORIGINS/);
    refuse({ TLS_CERT_FILE: '/tmp/cert.pem' }, /TLS_KEY_FILE/);
    refuse({ LOG_LEVEL: 'verbose' }, /LOG_LEVEL/);
    refuse({ MAIL_FROM: 'a@b\r\nBcc: x@y' }, /single line/);
    refuse({ RAMPART_HOST: 'example.com' }, /IP address/);
    refuse({ MAX_ORGS_PER_USER: '0' }, /MAX_ORGS_PER_USER must be at least 1/);
    refuse({ MAX_ORGS_PER_USER: 'many' }, /whole number/);
    assert.equal(loadConfig({ env: { RAMPART_DATA_DIR: dataDir }, flags: {} }).maxOrgsPerUser, 20, 'capped by default');
  });

  test('a config file with an unknown key or bad JSON is refused', () => {
    const dataDir = dir();
    writeFileSync(join(dataDir, 'rampart.config.json'), JSON.stringify({ prot: 1 }));
    assert.throws(() => loadConfig({ env: { RAMPART_DATA_DIR: dataDir }, flags: {} }), /unknown option "prot"/);
    writeFileSync(join(dataDir, 'rampart.config.json'), '{nope');
    assert.throws(() => loadConfig({ env: { RAMPART_DATA_DIR: dataDir }, flags: {} }), /not valid JSON/);
    assert.throws(() => loadConfig({ env: {}, flags: { config: join(dataDir, 'missing.json') } }), /does not exist/);
  });

  test('every option documents its default and has a unique env name', () => {
    const envs = new Set<string>();
    for (const option of OPTIONS) {
      assert.ok(option.doc.length > 20, `${option.key} is documented`);
      assert.ok(!envs.has(option.env), `${option.env} unique`);
      envs.add(option.env);
    }
  });
});

test('a secret option from <ENV>_FILE: its value without the trailing newline, never both, errors name the path and not the content', () => {
  const d = dir();
  const secret = join(d, 'db-url');
  writeFileSync(secret, 'postgres://rampart:s3cret-pw@127.0.0.1:5432/test\n', { mode: 0o400 });
  const config = loadConfig({ env: { RAMPART_DATA_DIR: d, DATABASE_URL_FILE: secret }, flags: {} });
  assert.equal(config.databaseUrl, 'postgres://rampart:s3cret-pw@127.0.0.1:5432/test');
  assert.deepEqual(config.secretFiles, { databaseUrl: secret });
  assert.throws(() => loadConfig({ env: { RAMPART_DATA_DIR: d, DATABASE_URL_FILE: secret, DATABASE_URL: 'postgres://127.0.0.1/test' }, flags: {} }), /^ConfigError: DATABASE_URL and DATABASE_URL_FILE exclude each other$/);
  assert.throws(() => loadConfig({ env: { RAMPART_DATA_DIR: d, REDIS_URL_FILE: join(d, 'missing') }, flags: {} }), new RegExp(`REDIS_URL_FILE: cannot read ${join(d, 'missing')} \\(ENOENT\\)`));
  const twoLines = join(d, 'two');
  writeFileSync(twoLines, 'smtps://user:hunter2@mail.example.com\nextra\n');
  assert.throws(() => loadConfig({ env: { RAMPART_DATA_DIR: d, SMTP_URL_FILE: twoLines }, flags: {} }), (error: Error) => /SMTP_URL_FILE: .* must hold the value on one line/.test(error.message) && !error.message.includes('hunter2'));
  // The value is still validated like the variable's: here a PostgreSQL URL off loopback without TLS.
  const plain = join(d, 'plain');
  writeFileSync(plain, 'postgres://rampart:pw@db.example.com/rampart');
  assert.throws(() => loadConfig({ env: { RAMPART_DATA_DIR: d, DATABASE_URL_FILE: plain }, flags: {} }), /DATABASE_URL/);
  // Only options that hold secrets take a file.
  assert.equal(loadConfig({ env: { RAMPART_DATA_DIR: d, LOG_LEVEL_FILE: secret }, flags: {} }).logLevel, 'info');
});
