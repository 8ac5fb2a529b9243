import { generateTOTP } from '../../src/auth/mfa/totp.js';
import type { TestClient } from './client.js';
import type { TestServer } from './harness.js';

/** The TOTP code of the server's (manual) clock. */
export function totpNow(t: TestServer, secret: string): string {
  return generateTOTP(secret, t.clock.now());
}

/** Moves the server clock to the next 30-second step, so a new code is not a replay. */
export function nextStep(t: TestServer): void {
  t.clock.advance(30_000);
}

/** Step-up with the password; throws unless it worked. */
export async function stepUp(client: TestClient, password: string): Promise<void> {
  const response = await client.post('/v1/me/reauth', { password });
  if (response.status !== 204) throw new Error(`reauth failed: ${response.status} ${response.text}`);
}

/** Turns TOTP on for a signed-in client; returns the seed and the recovery codes. */
export async function enrollTOTP(t: TestServer, client: TestClient, password: string): Promise<{ secret: string; recoveryCodes: string[] }> {
  await stepUp(client, password);
  const start = await client.post('/v1/me/mfa/totp');
  if (start.status !== 200) throw new Error(`totp start failed: ${start.status} ${start.text}`);
  const confirm = await client.post('/v1/me/mfa/totp/confirm', { code: totpNow(t, start.body.secret) });
  if (confirm.status !== 200) throw new Error(`totp confirm failed: ${confirm.status} ${confirm.text}`);
  nextStep(t);
  return { secret: start.body.secret, recoveryCodes: confirm.body.recoveryCodes };
}

/** Password login that must stop at the MFA step; returns the mfaToken and methods. */
export async function passwordStep(client: TestClient, email: string, password: string): Promise<{ mfaToken: string; methods: string[] }> {
  const response = await client.post('/v1/login', { email, password });
  if (response.status !== 200 || response.body.mfaRequired !== true) throw new Error(`expected mfaRequired: ${response.status} ${response.text}`);
  return { mfaToken: response.body.mfaToken, methods: response.body.methods };
}
