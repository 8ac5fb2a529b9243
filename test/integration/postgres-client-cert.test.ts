/**
 * PostgreSQL that authenticates Rampart by client certificate (ASVS V13.2.1): a throwaway
 * PostgreSQL cluster started here, TLS only, `hostssl … cert` in pg_hba.conf and nothing
 * else for TCP, so no password can get in. DATABASE_URL and PII_DATABASE_URL carry
 * sslmode=verify-full, sslrootcert, sslcert and sslkey (node-postgres reads those files).
 * Needs PostgreSQL's server binaries and root (to run them as the postgres user); skipped,
 * saying so, otherwise.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generate } from 'selfsigned';
import { signUp, startTestServer } from '../helpers/harness.js';
import { Resources } from '../helpers/resources.js';
import { freePort } from '../helpers/ports.js';

const PG_BIN = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').map((v) => join('/usr/lib/postgresql', v, 'bin')).find((d) => existsSync(join(d, 'initdb'))) : undefined;
const postgresUser = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
const skip = !PG_BIN ? 'PostgreSQL server binaries are not installed'
  : process.getuid?.() !== 0 ? 'needs root to run a PostgreSQL cluster as the postgres user'
  : postgresUser.status !== 0 ? 'no postgres user' : false;


describe('PostgreSQL that authenticates Rampart by client certificate', { skip }, () => {
  const open = new Resources();
  let port: number;
  let dir: string;
  let files: { ca: string; cert: string; key: string };
  const asPostgres = (command: string, args: string[]) => execFileSync('runuser', ['-u', 'postgres', '--', join(PG_BIN!, command), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-pg-cert-'));
    open.defer(() => rmSync(dir, { recursive: true, force: true }));
    const uid = Number(postgresUser.stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
    const data = join(dir, 'data');
    asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    // One key signs the server's certificate and the client's (CN = the database user).
    const pems = await generate([{ name: 'commonName', value: 'pg.internal' }], {
      keyType: 'ec', curve: 'P-256', algorithm: 'sha256', days: 1, clientCertificate: { cn: 'rampart' },
      extensions: [{ name: 'basicConstraints', cA: true }, { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
    } as never) as { cert: string; private: string; clientcert: string; clientprivate: string };
    const put = (name: string, text: string, owner: boolean) => {
      const path = join(dir, name);
      writeFileSync(path, text, { mode: 0o600 });
      if (owner) chownSync(path, uid, gid);
      return path;
    };
    const ca = put('ca.pem', pems.cert, true);
    put('server.pem', pems.cert, true);
    put('server-key.pem', pems.private, true);
    files = { ca: put('client-ca.pem', pems.cert, false), cert: put('client.pem', pems.clientcert, false), key: put('client-key.pem', pems.clientprivate, false) };
    port = await freePort();
    writeFileSync(join(data, 'pg_hba.conf'), 'local all all trust\nhostssl all rampart 127.0.0.1/32 cert\n');
    const options = `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c ssl=on -c ssl_cert_file=${join(dir, 'server.pem')} -c ssl_key_file=${join(dir, 'server-key.pem')} -c ssl_ca_file=${ca} -c fsync=off`;
    asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-o', options, '-w', 'start']);
    open.defer(() => { asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']); });
    const psql = (sql: string) => execFileSync('runuser', ['-u', 'postgres', '--', join(PG_BIN!, 'psql'), '-h', dir, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql], { encoding: 'utf8' });
    psql('CREATE ROLE rampart LOGIN');
    psql('CREATE DATABASE rampart OWNER rampart');
    psql('CREATE DATABASE rampart_pii OWNER rampart');
  });
  after(() => open.close());

  const url = (database: string, withCert: boolean) => {
    const params = new URLSearchParams({ sslmode: 'verify-full', sslrootcert: files.ca, ...(withCert ? { sslcert: files.cert, sslkey: files.key } : {}) });
    return `postgres://rampart@127.0.0.1:${port}/${database}?${params}`;
  };

  test('with sslcert and sslkey in the URLs both stores work; without them the server does not start', async () => {
    const t = await startTestServer({ env: { DATABASE_URL: url('rampart', true), PII_DATABASE_URL: url('rampart_pii', true) } });
    try {
      assert.equal(t.server.services.stores.main.dialect, 'postgres');
      const user = await signUp(t, 'pg-cert');
      const login = await t.client().post('/v1/login', { email: user.email, password: user.password });
      assert.equal(login.status, 200);
      assert.equal((await t.server.services.stores.main.db.selectFrom('users').select('id').where('id', '=', user.userId).execute()).length, 1);
    } finally {
      await t.close();
    }
    await assert.rejects(startTestServer({ env: { DATABASE_URL: url('rampart', false), PII_DATABASE_URL: url('rampart_pii', false) } }), /certificate|authentication/i);
  });
});
