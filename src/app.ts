import { randomUUID } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import fastifyCors from '@fastify/cors';
import { Ajv, type ValidateFunction } from 'ajv';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import helmet, { type HelmetOptions } from 'helmet';
import { registerAuth } from './http/auth.js';
import { registerRateLimitsAfterAuth, registerRateLimitsBeforeAuth } from './http/rate-limit.js';
import { registerRequestMetrics } from './http/request-metrics.js';
import { refuseUnparsableForwardedAddress } from './http/request-meta.js';
import { clientErrorHandler, connectHandler, frameworkErrorHandler, registerProblemHandling, sendProblem } from './http/problem.js';
import { accountRoutes } from './http/routes/account.js';
import { adminRoutes } from './http/routes/admin.js';
import { auditRoutes } from './http/routes/audit.js';
import { webhookRoutes } from './http/routes/webhooks.js';
import { disclosureRoutes } from './http/routes/disclosure.js';
import { healthRoutes } from './http/routes/health.js';
import { meRoutes } from './http/routes/me.js';
import { orgRoutes } from './http/routes/orgs.js';
import { mfaRoutes } from './http/routes/mfa.js';
import { passwordRoutes } from './http/routes/password.js';
import { sessionRoutes } from './http/routes/sessions.js';
import { tokenRoutes } from './http/routes/tokens.js';
import { accessTokenRoutes } from './http/routes/access-tokens.js';
import { introspectionRoutes } from './http/routes/introspect.js';
import { RampartError } from './errors.js';
import type { Services } from './services.js';
import { pathOf } from './logger.js';
import { httpsServerOptions, type TlsMaterial } from './tls/certificate.js';

export interface AppOptions {
  /** TLS material; null only for the explicitly insecure plain-HTTP-on-loopback mode. */
  tls: TlsMaterial | null;
}

/** Route modules, each `(app, services) => void`. Features add theirs here. */
const ROUTES = [healthRoutes, disclosureRoutes, accountRoutes, sessionRoutes, meRoutes, tokenRoutes, accessTokenRoutes, introspectionRoutes, orgRoutes, auditRoutes, webhookRoutes, mfaRoutes, passwordRoutes, adminRoutes];

/**
 * Builds the Fastify instance (not listening). Tests call it with a manual
 * clock and use real HTTPS or `app.inject`.
 */
export async function buildApp(services: Services, options: AppOptions): Promise<FastifyInstance> {
  const { config } = services;
  const app = Fastify({
    loggerInstance: services.logger,
    // Host is checked in the first onRequest hook, so that its 400 is a problem body like every other.
    ...(options.tls ? { https: { ...httpsServerOptions(options.tls), requireHostHeader: false } } : { http: { requireHostHeader: false } }),
    trustProxy: config.trustedProxies.length > 0 ? [...config.trustedProxies] : false,
    bodyLimit: config.bodyLimitBytes,
    // Our own ids only: a client-chosen request id could forge log lines.
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 256 },
    logController: new OneLinePerRequest(),
    // Refusals before routing and before parsing get the problem body and headers of every other answer.
    frameworkErrors: frameworkErrorHandler(SECURITY_HEADERS),
    clientErrorHandler: clientErrorHandler(SECURITY_HEADERS, services.logger),
  }) as unknown as FastifyInstance;
  // CONNECT never reaches Fastify: without a listener Node dropped it unanswered (no cost to other requests).
  app.server.on('connect', connectHandler(SECURITY_HEADERS, services.logger));

  configureValidation(app);
  registerProblemHandling(app);
  registerMethodNotAllowed(app);

  // Only JSON bodies: a cross-site form can send text/plain or urlencoded without
  // a CORS preflight, so accepting them would reopen CSRF (ASVS V3.5.2).
  app.removeContentTypeParser(['text/plain']);
  // An empty body sent with a JSON content type (clients that set the header on every request,
  // e.g. on POST /v1/logout) is no body: the route's schema decides whether one was needed.
  // Anything else goes to Fastify's own parser (prototype and constructor poisoning refused).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') {
      done(null, undefined);
      return;
    }
    parseJson(request, body as string, done);
  });

  await app.register(fastifyCookie, { hook: 'onRequest' });
  const securityHeaders = { ...SECURITY_HEADERS };
  // First of the hooks: a CORS preflight is answered from the CORS hook and must carry them too.
  app.addHook('onRequest', (request, reply, done) => {
    // Credentials and personal data flow through almost every route; nothing is cacheable
    // unless a route says so explicitly.
    reply.headers(securityHeaders);
    reply.header('x-request-id', request.id);
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400. Node's own check (off in
    // the server options) answered it with an empty body outside every hook.
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1') {
      return done(new RampartError('invalid_request', { publicDetail: 'An HTTP/1.1 request needs a Host header.' }));
    }
    done();
  });

  if (config.corsOrigins.length > 0) {
    // Exact origins only, never a reflected or wildcard origin with credentials (ASVS V3.4.2).
    // Another origin gets no CORS header at all (with an origin list, @fastify/cors still sent
    // Allow-Credentials to it), and its preflight is the 405 problem of any other OPTIONS.
    const allowed = new Set(config.corsOrigins);
    await app.register(fastifyCors, {
      origin: (origin: string | undefined, callback: (error: Error | null, origin: string | false) => void) => callback(null, origin !== undefined && allowed.has(origin) ? origin : false),
      credentials: true,
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['content-type', 'x-csrf-token', 'authorization'],
      maxAge: 600,
      // Not the plugin's text/plain 400 for an OPTIONS without Access-Control-Request-Method.
      strictPreflight: false,
    });
  }
  registerRequestMetrics(app, services);
  // Before any counting: a forwarded address must be an address (one isIP per request, proxy mode only).
  if (config.trustedProxies.length > 0) app.addHook('onRequest', refuseUnparsableForwardedAddress);
  registerRateLimitsBeforeAuth(app, services);
  registerAuth(app, services);
  registerRateLimitsAfterAuth(app, services);

  for (const routes of ROUTES) await routes(app, services);
  return app;
}

/**
 * The security headers of every response, as helmet computes them for this policy.
 * helmet decides the headers; we compute them once at start-up instead of running
 * its middleware on every request, which halved throughput in `npm run bench`
 * (the headers never vary between requests). Legacy headers for Flash and old IE
 * are left out; a route serving HTML sets its own CSP (see /security).
 */
const HELMET_POLICY: HelmetOptions = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
  },
  strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
  referrerPolicy: { policy: 'no-referrer' },
  xFrameOptions: { action: 'deny' },
  crossOriginOpenerPolicy: { policy: 'same-origin' },
  crossOriginResourcePolicy: { policy: 'same-origin' },
  crossOriginEmbedderPolicy: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
  originAgentCluster: false,
  xPoweredBy: false,
};

export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({ ...helmetHeaders(HELMET_POLICY), 'cache-control': 'no-store' });

function helmetHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  const response = {
    setHeader(name: string, value: string | number) {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  helmet(options)({} as never, response as never, () => undefined);
  return headers;
}

/**
 * One log line per request (on completion, with method, path, client address,
 * status and time) instead of Fastify's two: half the logging cost on the hot path.
 */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    // Flat primitive fields (the request's own logger already carries its id): no serializers run.
    const fields = { method: request.method, path: pathOf(request.url), ip: request.ip, statusCode: reply.statusCode, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...fields, err: error }, 'request errored');
    else reply.log.info(fields, 'request completed');
  }
}

/**
 * Bodies are validated strictly: no coercion, no defaults, unknown members
 * refused (additionalProperties:false in every schema). Query strings are text,
 * so they alone are coerced to the declared types.
 */
function configureValidation(app: FastifyInstance): void {
  const strict = new Ajv({ removeAdditional: false, useDefaults: false, coerceTypes: false, allErrors: false, strict: true });
  const query = new Ajv({ removeAdditional: false, useDefaults: true, coerceTypes: true, allErrors: false, strict: true });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'querystring' || httpPart === 'params' ? finiteOnly(query.compile(schema)) : strict.compile(schema)));
}

/**
 * Ajv coerces the query string "1e309" (or "Infinity") to Infinity and then skips
 * `minimum`/`maximum`, which only compare finite numbers: `?limit=1e309` reached the
 * database as LIMIT Infinity (a 500). Query strings and params are flat objects,
 * so one pass over their values refuses what coercion made non-finite.
 */
function finiteOnly(validate: ValidateFunction): ValidateFunction {
  const checked = ((data: unknown, context?: Parameters<ValidateFunction>[1]) => {
    if (!validate(data, context)) {
      checked.errors = validate.errors;
      return false;
    }
    if (data !== null && typeof data === 'object') {
      for (const key in data) {
        const value = (data as Record<string, unknown>)[key];
        if (typeof value === 'number' && !Number.isFinite(value)) {
          checked.errors = [{ instancePath: `/${key}`, schemaPath: '#', keyword: 'type', params: {}, message: 'must be a finite number' }];
          return false;
        }
      }
    }
    checked.errors = null;
    return true;
  }) as ValidateFunction;
  // Fastify passes the parent (so Ajv may write coerced values back) only to validators that carry it.
  checked.schemaEnv = validate.schemaEnv;
  return checked;
}

/** 405 with Allow for a known path under another method, instead of a bare 404. */
function registerMethodNotAllowed(app: FastifyInstance): void {
  const router = FindMyWay({ ignoreTrailingSlash: false });
  const methods = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat() as string[]) {
      if (method === 'HEAD') continue;
      router.on(method as HTTPMethod, route.url, () => undefined, { url: route.url });
      const set = methods.get(route.url) ?? new Set<string>();
      set.add(method);
      methods.set(route.url, set);
    }
  });
  app.setNotFoundHandler((request, reply) => {
    const path = pathOf(request.url);
    const allowed: string[] = [];
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) {
      if (router.find(method as HTTPMethod, path)) allowed.push(method);
    }
    if (allowed.length > 0) return sendProblem(reply, 'method_not_allowed', { headers: { allow: allowed.join(', ') } });
    return sendProblem(reply, 'not_found');
  });
}
