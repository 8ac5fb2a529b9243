import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { clearSessionCookie, requireStepUp, sessionAuth, setSessionCookie } from '../auth.js';
import { requestMeta } from '../request-meta.js';
import { emailSchema, loginResponseSchema, passwordSchema, userSchema } from '../schemas.js';
import { sendLoginResult } from './account.js';

/** A mailed or handed-out secret: any garbage answers `invalid_token` like an expired one, so only bounds here. */
const tokenSchema = { type: 'string', minLength: 1, maxLength: 256 } as const;

/** Password change, reset, expired-password change and account deletion (issue: password security). */
export async function passwordRoutes(app: FastifyInstance, services: Services): Promise<void> {
  /** Always 202, at once: whether a mail goes out is decided off the request path (no enumeration). */
  app.post<{ Body: { email: string } }>('/v1/password/forgot', {
    config: { auth: 'none' },
    schema: {
      body: { type: 'object', additionalProperties: false, required: ['email'], properties: { email: emailSchema } },
      response: { 202: { type: 'null' } },
    },
  }, async (request, reply) => {
    services.passwordReset.requestReset(request.body.email, requestMeta(request));
    return reply.code(202).send();
  });

  /** Sets a new password through a reset link; signs nobody in. */
  app.post<{ Body: { token: string; password: string } }>('/v1/password/reset', {
    config: { auth: 'none' },
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['token', 'password'],
        properties: { token: tokenSchema, password: passwordSchema },
      },
      response: { 204: { type: 'null' } },
    },
  }, async (request, reply) => {
    await services.passwordReset.reset(request.body.token, request.body.password, requestMeta(request));
    return reply.code(204).send();
  });

  /** Replaces an expired password and finishes the login (or asks for the second factor). */
  app.post<{ Body: { changeToken: string; password: string } }>('/v1/password/change-expired', {
    config: { auth: 'none' },
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['changeToken', 'password'],
        properties: { changeToken: tokenSchema, password: passwordSchema },
      },
      response: { 200: loginResponseSchema },
    },
  }, async (request, reply) => {
    const result = await services.passwordExpiry.changeExpired(request.body.changeToken, request.body.password, requestMeta(request));
    return sendLoginResult(request, reply, services, result);
  });

  /**
   * Changes the password of the signed-in user. A session only (no token may
   * change a password). The response carries the session's new cookie; the
   * CSRF token stays valid (it is bound to the session's public id).
   */
  app.post<{ Body: { currentPassword: string; newPassword: string } }>('/v1/me/password', {
    config: { auth: 'session' },
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['currentPassword', 'newPassword'],
        properties: { currentPassword: passwordSchema, newPassword: passwordSchema },
      },
      response: { 204: { type: 'null' } },
    },
  }, async (request, reply) => {
    const { session } = sessionAuth(request);
    const rotated = await services.passwordChange.change(session, request.body.currentPassword, request.body.newPassword, requestMeta(request));
    setSessionCookie(reply, rotated.secret, session.expires_at);
    return reply.code(204).send();
  });

  /**
   * Mails the signed-in user a link that proves their address (`emailVerified`). A session
   * only: a mail to the account's owner is not an API token's business. 409 `already_verified`
   * when there is nothing to prove, 429 once the account's hourly budget is spent.
   */
  app.post('/v1/me/email/verification', {
    config: { auth: 'session' },
    schema: { response: { 202: { type: 'null' } } },
  }, async (request, reply) => {
    const { session } = sessionAuth(request);
    await services.emailVerification.requestLink(session.user_id, requestMeta(request));
    return reply.code(202).send();
  });

  /** Redeems a verification link (`…/verify-email?token=…`): no session needed, the token is the proof. */
  app.post<{ Body: { token: string } }>('/v1/email/verify', {
    config: { auth: 'none' },
    schema: {
      body: { type: 'object', additionalProperties: false, required: ['token'], properties: { token: tokenSchema } },
      response: { 200: { type: 'object', additionalProperties: false, required: ['user'], properties: { user: userSchema } } },
    },
  }, async (request) => ({ user: await services.emailVerification.verify(request.body.token, requestMeta(request)) }));

  /** Deletes the signed-in user's account: step-up, every credential revoked, personal data crypto-shredded. */
  app.delete('/v1/me', {
    config: { auth: 'session' },
    schema: { response: { 204: { type: 'null' } } },
  }, async (request, reply) => {
    const { userId } = requireStepUp(request, services);
    await services.accounts.delete(userId, { type: 'user', id: userId }, requestMeta(request));
    clearSessionCookie(reply);
    return reply.code(204).send();
  });
}
