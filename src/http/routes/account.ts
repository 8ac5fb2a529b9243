import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CompletedLogin, LoginResult } from '../../auth/flows/login.js';
import type { Services } from '../../services.js';
import { clearSessionCookie, SESSION_COOKIE, sessionAuth, setSessionCookie } from '../auth.js';
import { requestMeta } from '../request-meta.js';
import { emailSchema, loginResponseSchema, nameSchema, passwordSchema, sessionSchema, userSchema } from '../schemas.js';
import { toPublicSession } from '../../sessions/public-session.js';
import { RampartError } from '../../errors.js';
import type { ActiveSession } from '../../sessions/session-service.js';
import { toPublicUser } from '../../users/public-user.js';

function sessionUser(session: ActiveSession) {
  return { id: session.user_id, email_verified: session.user_email_verified, mfa_enabled: session.user_mfa_enabled, created_at: session.user_created_at };
}

/**
 * Sets the cookie of a completed login and returns the API's login body. A
 * session cookie the browser already held is replaced, so that session ends
 * here too (ASVS V7.2.4: a copy of the old cookie must not live on).
 */
export async function sendLogin(request: FastifyRequest, reply: FastifyReply, services: Services, result: CompletedLogin, status = 200) {
  await endReplacedSession(request, services);
  setSessionCookie(reply, result.issued.secret, result.issued.row.expires_at);
  return reply.code(status).send({
    ...result.responseExtras,
    user: result.user,
    session: toPublicSession(services.sessions, result.issued.row, result.profile),
    csrfToken: result.csrfToken,
  });
}

export async function sendLoginResult(request: FastifyRequest, reply: FastifyReply, services: Services, result: LoginResult) {
  if (result.kind === 'interrupted') return reply.code(200).send(result.body);
  return sendLogin(request, reply, services, result);
}

/** Ends the session named by the request's cookie, if one is stored (reason `replaced`). */
async function endReplacedSession(request: FastifyRequest, services: Services): Promise<void> {
  const secret = request.cookies[SESSION_COOKIE];
  if (secret) await services.sessions.endReplaced(secret, requestMeta(request));
}

export async function accountRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.post<{ Body: { email: string; password: string; name?: string } }>('/v1/signup', {
    config: { auth: 'none' },
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['email', 'password'],
        properties: { email: emailSchema, password: passwordSchema, name: nameSchema },
      },
      response: { 201: loginResponseSchema },
    },
  }, async (request, reply) => {
    const { email, password, name } = request.body;
    const result = await services.signup.signup({ email, password, name: name ?? null }, requestMeta(request));
    return sendLogin(request, reply, services, result, 201);
  });

  app.post<{ Body: { email: string; password: string } }>('/v1/login', {
    config: { auth: 'none' },
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['email', 'password'],
        properties: { email: emailSchema, password: passwordSchema },
      },
      response: { 200: loginResponseSchema },
    },
  }, async (request, reply) => {
    const result = await services.login.login(request.body.email, request.body.password, requestMeta(request));
    return sendLoginResult(request, reply, services, result);
  });

  app.post('/v1/logout', {
    config: { auth: 'session', allowDuringMfaEnrollment: true },
    schema: { response: { 204: { type: 'null' } } },
  }, async (request, reply) => {
    await services.sessions.end(sessionAuth(request).session, 'logout', requestMeta(request));
    clearSessionCookie(reply);
    return reply.code(204).send();
  });

  app.get('/v1/session', {
    config: { auth: 'user', scope: 'profile:read', allowDuringMfaEnrollment: true },
    schema: {
      response: {
        200: {
          type: 'object',
          properties: {
            user: userSchema,
            session: sessionSchema,
            orgs: {
              type: 'array',
              items: {
                type: 'object',
                properties: { id: { type: 'string' }, name: { type: 'string' }, slug: { type: 'string' }, role: { type: 'string' } },
              },
            },
            csrfToken: { type: 'string' },
          },
        },
      },
    },
  }, async (request) => {
    const auth = request.auth!;
    // A session already carries its user's account fields (one joined read); a token needs the row.
    const [user, profile, orgs] = await Promise.all([
      auth.kind === 'session' ? sessionUser(auth.session) : services.users.findById(auth.userId),
      services.pii.getProfile(auth.userId),
      services.orgsOfUser(auth.userId),
    ]);
    if (!user || !profile) throw new RampartError('unauthenticated');
    const publicUser = toPublicUser(user, profile);
    if (auth.kind !== 'session') return { user: publicUser, orgs };
    return {
      user: publicUser,
      session: toPublicSession(services.sessions, auth.session, profile),
      orgs,
      csrfToken: await services.sessions.csrfToken(auth.session.public_id),
    };
  });
}
