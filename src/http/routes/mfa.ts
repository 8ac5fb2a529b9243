import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import type { FastifyInstance } from 'fastify';
import type { MfaProof } from '../../auth/mfa/mfa-service.js';
import { iso } from '../../clock.js';
import { RampartError } from '../../errors.js';
import type { Services } from '../../services.js';
import { requireStepUp, sessionAuth, setSessionCookie } from '../auth.js';
import { mfaEnrollmentGuard } from '../mfa-guard.js';
import { requestMeta } from '../request-meta.js';
import { idParamSchema, loginResponseSchema } from '../schemas.js';
import { sendLogin } from './account.js';

// --- request schemas: every member bounded, nothing unknown accepted ---------------------------

/** base64url text of at most `max` characters. */
function base64url(max: number) {
  return { type: 'string', minLength: 1, maxLength: max, pattern: '^[A-Za-z0-9_-]+$' } as const;
}

/** A handed-out secret, looked up by its hash: any garbage is the `401 mfa_token_expired` of an unknown one (API.md), so only bounds here. */
const mfaTokenSchema = { type: 'string', minLength: 1, maxLength: 256 } as const;
const totpCodeSchema = { type: 'string', minLength: 6, maxLength: 8, pattern: '^[0-9]+$' } as const;
const recoveryCodeSchema = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9 -]+$' } as const;
const credentialNameSchema = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[^\\p{Cc}\\u2028\\u2029]+$' } as const;
const transportsSchema = {
  type: 'array',
  maxItems: 8,
  items: { type: 'string', enum: ['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb'] },
} as const;
const extensionResultsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    appid: { type: 'boolean' },
    credProps: { type: 'object', additionalProperties: false, properties: { rk: { type: 'boolean' } } },
    hmacCreateSecret: { type: 'boolean' },
  },
} as const;
const credentialCommon = {
  id: base64url(1400),
  rawId: base64url(1400),
  type: { type: 'string', enum: ['public-key'] },
  authenticatorAttachment: { type: 'string', enum: ['platform', 'cross-platform'] },
  clientExtensionResults: extensionResultsSchema,
} as const;

/** The browser's RegistrationResponseJSON (PublicKeyCredential.toJSON() after create()). */
const registrationResponseSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'rawId', 'type', 'response'],
  properties: {
    ...credentialCommon,
    response: {
      type: 'object',
      additionalProperties: false,
      required: ['clientDataJSON', 'attestationObject'],
      properties: {
        clientDataJSON: base64url(4096),
        attestationObject: base64url(16384),
        authenticatorData: base64url(8192),
        transports: transportsSchema,
        publicKeyAlgorithm: { type: 'integer', minimum: -65536, maximum: 65536 },
        publicKey: base64url(2048),
      },
    },
  },
} as const;

/** The browser's AuthenticationResponseJSON (PublicKeyCredential.toJSON() after get()). */
const authenticationResponseSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'rawId', 'type', 'response'],
  properties: {
    ...credentialCommon,
    response: {
      type: 'object',
      additionalProperties: false,
      required: ['clientDataJSON', 'authenticatorData', 'signature'],
      properties: {
        clientDataJSON: base64url(4096),
        authenticatorData: base64url(8192),
        signature: base64url(2048),
        userHandle: base64url(128),
      },
    },
  },
} as const;

// --- response schemas ------------------------------------------------------------------------------

const descriptorSchema = {
  type: 'object',
  properties: { id: { type: 'string' }, type: { type: 'string' }, transports: { type: 'array', items: { type: 'string' } } },
} as const;

const creationOptionsSchema = {
  type: 'object',
  properties: {
    challenge: { type: 'string' },
    rp: { type: 'object', properties: { name: { type: 'string' }, id: { type: 'string' } } },
    user: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, displayName: { type: 'string' } } },
    pubKeyCredParams: { type: 'array', items: { type: 'object', properties: { alg: { type: 'integer' }, type: { type: 'string' } } } },
    timeout: { type: 'integer' },
    attestation: { type: 'string' },
    excludeCredentials: { type: 'array', items: descriptorSchema },
    authenticatorSelection: {
      type: 'object',
      properties: {
        authenticatorAttachment: { type: 'string' },
        residentKey: { type: 'string' },
        requireResidentKey: { type: 'boolean' },
        userVerification: { type: 'string' },
      },
    },
    extensions: { type: 'object', properties: { credProps: { type: 'boolean' } } },
    hints: { type: 'array', items: { type: 'string' } },
  },
} as const;

const requestOptionsSchema = {
  type: 'object',
  properties: {
    challenge: { type: 'string' },
    timeout: { type: 'integer' },
    rpId: { type: 'string' },
    allowCredentials: { type: 'array', items: descriptorSchema },
    userVerification: { type: 'string' },
    hints: { type: 'array', items: { type: 'string' } },
  },
} as const;

const recoveryCodesResponse = {
  type: 'object',
  required: ['recoveryCodes'],
  properties: { recoveryCodes: { type: 'array', items: { type: 'string' } } },
} as const;

export async function mfaRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.rampart.authGuards.push(mfaEnrollmentGuard(services));

  async function profileOf(userId: string) {
    const profile = await services.pii.getProfile(userId);
    if (!profile) throw new RampartError('unauthenticated');
    return profile;
  }

  app.get('/v1/me/mfa', {
    config: { auth: 'user', scope: 'profile:read', allowDuringMfaEnrollment: true },
    schema: {
      response: {
        200: {
          type: 'object',
          required: ['totp', 'webauthn', 'recoveryCodesLeft'],
          properties: {
            totp: { type: 'boolean' },
            webauthn: {
              type: 'array',
              items: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, createdAt: { type: 'string' } } },
            },
            recoveryCodesLeft: { type: 'integer' },
            enrollmentRequired: { type: 'boolean' },
            enrollBefore: { type: ['string', 'null'] },
          },
        },
      },
    },
  }, async (request) => {
    const auth = request.auth!;
    const status = await services.mfa.status(auth.userId, await profileOf(auth.userId), auth.kind === 'session' ? auth.session : null);
    return {
      totp: status.totp,
      webauthn: status.webauthn.map((credential) => ({ ...credential, createdAt: iso(credential.createdAt) })),
      recoveryCodesLeft: status.recoveryCodesLeft,
      enrollmentRequired: status.enrollmentRequired,
      enrollBefore: status.enrollBefore === null || !Number.isFinite(status.enrollBefore) ? null : iso(status.enrollBefore),
    };
  });

  // --- TOTP ---

  app.post('/v1/me/mfa/totp', {
    config: { auth: 'session', allowDuringMfaEnrollment: true },
    schema: {
      response: {
        200: { type: 'object', required: ['secret', 'otpauthUri'], properties: { secret: { type: 'string' }, otpauthUri: { type: 'string' } } },
      },
    },
  }, async (request) => {
    const { userId } = requireStepUp(request, services);
    return services.mfa.startTOTPEnrollment(userId, await profileOf(userId));
  });

  app.post<{ Body: { code: string } }>('/v1/me/mfa/totp/confirm', {
    config: { auth: 'session', allowDuringMfaEnrollment: true },
    schema: {
      body: { type: 'object', additionalProperties: false, required: ['code'], properties: { code: totpCodeSchema } },
      response: { 200: recoveryCodesResponse },
    },
  }, async (request, reply) => {
    const { session, userId } = sessionAuth(request);
    const result = await services.mfa.confirmTOTP(session, await profileOf(userId), request.body.code, requestMeta(request));
    if (result.rotated) setSessionCookie(reply, result.rotated.secret, session.expires_at);
    return reply.code(200).send({ recoveryCodes: result.recoveryCodes });
  });

  app.delete('/v1/me/mfa/totp', {
    config: { auth: 'session' },
    schema: { response: { 204: { type: 'null' } } },
  }, async (request, reply) => {
    const { session } = requireStepUp(request, services);
    await services.mfa.removeTOTP(session, requestMeta(request));
    return reply.code(204).send();
  });

  // --- WebAuthn ---

  app.post('/v1/me/mfa/webauthn/options', {
    config: { auth: 'session', allowDuringMfaEnrollment: true },
    schema: { response: { 200: creationOptionsSchema } },
  }, async (request) => {
    const { session, userId } = requireStepUp(request, services);
    return services.mfa.webAuthnRegistrationOptions(session, await profileOf(userId));
  });

  app.post<{ Body: { name: string; response: RegistrationResponseJSON } }>('/v1/me/mfa/webauthn', {
    config: { auth: 'session', allowDuringMfaEnrollment: true },
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'response'],
        properties: { name: credentialNameSchema, response: registrationResponseSchema },
      },
      response: { 201: { type: 'object', required: ['id', 'name'], properties: { id: { type: 'string' }, name: { type: 'string' } } } },
    },
  }, async (request, reply) => {
    const { session, userId } = sessionAuth(request);
    const response = { ...request.body.response, clientExtensionResults: request.body.response.clientExtensionResults ?? {} };
    const result = await services.mfa.registerWebAuthn(session, await profileOf(userId), request.body.name, response, requestMeta(request));
    if (result.rotated) setSessionCookie(reply, result.rotated.secret, session.expires_at);
    return reply.code(201).send({ id: result.id, name: result.name });
  });

  app.delete<{ Params: { id: string } }>('/v1/me/mfa/webauthn/:id', {
    config: { auth: 'session' },
    schema: {
      params: { type: 'object', additionalProperties: false, required: ['id'], properties: { id: idParamSchema } },
      response: { 204: { type: 'null' } },
    },
  }, async (request, reply) => {
    const { session } = requireStepUp(request, services);
    await services.mfa.removeWebAuthn(session, request.params.id, requestMeta(request));
    return reply.code(204).send();
  });

  // --- recovery codes ---

  app.post('/v1/me/mfa/recovery-codes', {
    config: { auth: 'session' },
    schema: { response: { 200: recoveryCodesResponse } },
  }, async (request) => {
    const { userId } = requireStepUp(request, services);
    return { recoveryCodes: await services.mfa.regenerateRecoveryCodes(userId, requestMeta(request)) };
  });

  // --- the second step of a login ---

  app.post<{ Body: { mfaToken: string; totp?: string; recoveryCode?: string; webauthn?: AuthenticationResponseJSON } }>('/v1/login/mfa', {
    config: { auth: 'none' },
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['mfaToken'],
        // The token and exactly one proof.
        minProperties: 2,
        maxProperties: 2,
        properties: { mfaToken: mfaTokenSchema, totp: totpCodeSchema, recoveryCode: recoveryCodeSchema, webauthn: authenticationResponseSchema },
      },
      response: { 200: loginResponseSchema },
    },
  }, async (request, reply) => {
    const { mfaToken, totp, recoveryCode, webauthn } = request.body;
    const proof: MfaProof = totp !== undefined
      ? { method: 'totp', code: totp }
      : recoveryCode !== undefined
        ? { method: 'recovery_code', code: recoveryCode }
        : { method: 'webauthn', response: { ...webauthn!, clientExtensionResults: webauthn!.clientExtensionResults ?? {} } };
    const result = await services.mfaLogin.complete(mfaToken, proof, requestMeta(request));
    return sendLogin(request, reply, services, result);
  });

  app.post<{ Body: { mfaToken: string } }>('/v1/login/webauthn/options', {
    config: { auth: 'none' },
    schema: {
      body: { type: 'object', additionalProperties: false, required: ['mfaToken'], properties: { mfaToken: mfaTokenSchema } },
      response: { 200: requestOptionsSchema },
    },
  }, async (request) => services.mfa.loginWebAuthnOptions(request.body.mfaToken));
}
