import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import nodemailer, { type Transporter } from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { Clock } from '../clock.js';

export interface MailMessage {
  to: string;
  subject: string;
  /** Plain text; links on their own line. Never HTML built from user data. */
  text: string;
}

export interface Mailer {
  send(message: MailMessage): Promise<void>;
  close(): void;
}

export interface MailerOptions {
  from: string;
  /** smtp:// or smtps:// URL; null writes .eml files to `outboxDir`. */
  smtpUrl: string | null;
  /** Allow smtp:// without STARTTLS (only for a local test relay). */
  insecureSmtpWithoutTls: boolean;
  /** PEM CA bundle to trust for the relay's certificate (an internal CA); null: the system CAs. */
  smtpCaFile?: string | null;
  outboxDir: string;
  clock: Clock;
}

/**
 * Mail through nodemailer: SMTP when configured (TLS required unless an
 * explicitly insecure option says otherwise), otherwise an outbox folder with
 * one RFC 5322 `.eml` file per message, which a person or a test can read.
 */
export function createMailer(options: MailerOptions): Mailer {
  if (options.smtpUrl) {
    const ca = options.smtpCaFile ? readFileSync(options.smtpCaFile, 'utf8') : undefined;
    return new SmtpMailer(options.smtpUrl, options.from, options.insecureSmtpWithoutTls, ca);
  }
  return new OutboxMailer(options.outboxDir, options.from, options.clock);
}

/** How long the SMTP relay may take to accept a connection and greet (a send waits on it). */
export const SMTP_TIMEOUT_MS = 5_000;

/** RFC 5322 §2.1.1: a line MUST NOT exceed 998 characters (78 is a SHOULD). */
const MAX_LINE = 998;
const PLAIN_ASCII = /^[\t\x20-\x7e\n]*$/;

/**
 * The RFC 5322 message. nodemailer quoted-prints any text with a line over 76
 * characters, which would cut a mailed link (`…?token=` + 43 characters) with
 * soft line breaks and `=3D`: a person copying it or a test reading the .eml
 * would get a broken link. Plain ASCII text whose lines fit RFC 5322's hard
 * limit goes out as 7bit instead — nodemailer still writes and encodes every
 * header — and anything else keeps nodemailer's own encoding.
 */
export async function composeMessage(from: string, message: MailMessage): Promise<Buffer> {
  const text = message.text.replace(/\r\n/g, '\n');
  const fitsSevenBit = PLAIN_ASCII.test(text) && text.split('\n').every((line) => line.length <= MAX_LINE);
  const headers = { from, to: message.to, subject: message.subject };
  if (!fitsSevenBit) return new MailComposer({ ...headers, text: message.text, newline: '\r\n' }).compile().build();
  // An empty text part is 7bit; its headers are complete and the body is appended as is.
  const head = (await new MailComposer({ ...headers, text: '', newline: '\r\n' }).compile().build()).toString('utf8');
  const body = text.replace(/\n/g, '\r\n');
  return Buffer.from(`${head.replace(/(\r\n)*$/, '')}\r\n\r\n${body.endsWith('\r\n') ? body : `${body}\r\n`}`, 'utf8');
}

class SmtpMailer implements Mailer {
  readonly #transport: Transporter;

  constructor(url: string, private readonly from: string, insecure: boolean, ca: string | undefined) {
    const secure = new URL(url).protocol === 'smtps:';
    this.#transport = nodemailer.createTransport({
      url,
      secure,
      requireTLS: !secure && !insecure,
      ignoreTLS: insecure && !secure,
      // A relay that accepts and never answers held a request for 30 s (greeting) to 10 min (socket).
      connectionTimeout: SMTP_TIMEOUT_MS,
      greetingTimeout: SMTP_TIMEOUT_MS,
      socketTimeout: 3 * SMTP_TIMEOUT_MS,
      // The certificate is always verified; an internal relay's CA is added, never a bypass.
      tls: { minVersion: 'TLSv1.2', ...(ca ? { ca } : {}) },
    });
  }

  async send(message: MailMessage): Promise<void> {
    await this.#transport.sendMail({ envelope: { from: this.from, to: [message.to] }, raw: await composeMessage(this.from, message) });
  }

  close(): void {
    this.#transport.close();
  }
}

class OutboxMailer implements Mailer {
  readonly #transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });

  constructor(private readonly dir: string, private readonly from: string, private readonly clock: Clock) {}

  async send(message: MailMessage): Promise<void> {
    const info = await this.#transport.sendMail({ envelope: { from: this.from, to: [message.to] }, raw: await composeMessage(this.from, message) });
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const stamp = new Date(this.clock.now()).toISOString().replace(/[:.]/g, '-');
    const file = join(this.dir, `${stamp}-${randomBytes(6).toString('hex')}.eml`);
    writeFileSync(file, info.message as Buffer, { mode: 0o600, flag: 'wx' });
  }

  close(): void {
    this.#transport.close();
  }
}
