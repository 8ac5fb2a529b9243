import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';

/** One received message: its raw RFC 5322 text, the decoded plain-text body, and facts of the delivery. */
export interface ReceivedMail {
  raw: string;
  to: string;
  subject: string;
  body: string;
  /** Whether the SMTP session was encrypted (STARTTLS) when the message was sent. */
  secure?: boolean;
}

/** Splits an RFC 5322 message and decodes a 7bit, quoted-printable or base64 text body. */
export function parseMail(raw: string): ReceivedMail {
  const split = raw.indexOf('\r\n\r\n') >= 0 ? raw.indexOf('\r\n\r\n') : raw.indexOf('\n\n');
  const head = raw.slice(0, split).replace(/\r?\n[ \t]+/g, ' ');
  let body = raw.slice(split).replace(/^(\r?\n)+/, '');
  const header = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head)?.[1]?.trim() ?? '';
  const encoding = header('Content-Transfer-Encoding').toLowerCase();
  if (encoding === 'quoted-printable') {
    body = Buffer.from(body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString('utf8');
  } else if (encoding === 'base64') {
    body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  }
  return { raw, to: header('To'), subject: header('Subject'), body: body.replace(/\r\n/g, '\n') };
}

/** Every message in DATA_DIR/outbox, oldest first. */
export function readOutbox(dataDir: string): ReceivedMail[] {
  const dir = join(dataDir, 'outbox');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((name) => name.endsWith('.eml')).sort().map((name) => parseMail(readFileSync(join(dir, name), 'utf8')));
}

/** The reset token in a mail's link (`…/reset-password?token=…`), as a person would copy it from the text. */
export function resetTokenFrom(mail: ReceivedMail): string {
  const match = /\/reset-password\?token=([A-Za-z0-9_-]+)/.exec(mail.body);
  if (!match) throw new Error(`no reset link in mail "${mail.subject}"`);
  return match[1]!;
}

/**
 * A real SMTP listener on loopback that speaks STARTTLS with the given certificate, on a
 * free port. While `down` is set it greets every connection with `421` (service not
 * available) and hangs up, as a relay in an outage does: a test can take the relay down
 * and bring it back on the same port without ever freeing the port (a freed ephemeral
 * port can be taken by another test's listener in the meantime).
 */
export interface SmtpSink {
  port: number;
  messages: ReceivedMail[];
  /** Refuse every new connection with 421 while true. */
  down: boolean;
  close(): Promise<void>;
}

export async function startSmtpSink(tls: { key: string; cert: string } | null, options: { down?: boolean } = {}): Promise<SmtpSink> {
  const messages: ReceivedMail[] = [];
  const sink: SmtpSink = {
    port: 0,
    messages,
    down: options.down ?? false,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = new SMTPServer({
    secure: false,
    ...(tls ? { key: tls.key, cert: tls.cert } : { disabledCommands: ['STARTTLS'] }),
    authOptional: true,
    disabledCommands: tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    logger: false,
    onConnect(_session, callback) {
      if (sink.down) {
        callback(Object.assign(new Error('Service not available, closing transmission channel'), { responseCode: 421 }));
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        messages.push({ ...parseMail(Buffer.concat(chunks).toString('utf8')), secure: session.secure });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  sink.port = (server.server.address() as AddressInfo).port;
  return sink;
}

/** Polls (without sleeping on the test clock) until `find` returns a value; mail goes out off the request path. */
export async function waitFor<T>(find: () => T | undefined | null, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = find();
    if (value !== undefined && value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
