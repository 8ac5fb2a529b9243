import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import nodemailer, { type Transporter } from 'nodemailer';
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
  outboxDir: string;
  clock: Clock;
}

/**
 * Mail through nodemailer: SMTP when configured (TLS required unless an
 * explicitly insecure option says otherwise), otherwise an outbox folder with
 * one RFC 5322 `.eml` file per message, which a person or a test can read.
 */
export function createMailer(options: MailerOptions): Mailer {
  if (options.smtpUrl) return new SmtpMailer(options.smtpUrl, options.from, options.insecureSmtpWithoutTls);
  return new OutboxMailer(options.outboxDir, options.from, options.clock);
}

class SmtpMailer implements Mailer {
  readonly #transport: Transporter;

  constructor(url: string, private readonly from: string, insecure: boolean) {
    const secure = new URL(url).protocol === 'smtps:';
    this.#transport = nodemailer.createTransport({
      url,
      secure,
      requireTLS: !secure && !insecure,
      ignoreTLS: insecure && !secure,
      tls: { minVersion: 'TLSv1.2' },
    });
  }

  async send(message: MailMessage): Promise<void> {
    await this.#transport.sendMail({ from: this.from, to: message.to, subject: message.subject, text: message.text });
  }

  close(): void {
    this.#transport.close();
  }
}

class OutboxMailer implements Mailer {
  readonly #transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });

  constructor(private readonly dir: string, private readonly from: string, private readonly clock: Clock) {}

  async send(message: MailMessage): Promise<void> {
    const info = await this.#transport.sendMail({ from: this.from, to: message.to, subject: message.subject, text: message.text });
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const stamp = new Date(this.clock.now()).toISOString().replace(/[:.]/g, '-');
    const file = join(this.dir, `${stamp}-${randomBytes(6).toString('hex')}.eml`);
    writeFileSync(file, info.message as Buffer, { mode: 0o600, flag: 'wx' });
  }

  close(): void {
    this.#transport.close();
  }
}
