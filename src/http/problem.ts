import { randomUUID } from 'node:crypto';
import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, type ErrorCode, RampartError } from '../errors.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

export interface ProblemBody {
  type: 'about:blank';
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  incidentId?: string;
  [extension: string]: unknown;
}

/** The RFC 9457 body of a known code. */
export function problemBody(code: ErrorCode, extras: { detail?: string; extensions?: Record<string, unknown> } = {}): ProblemBody {
  const { status, title } = ERRORS[code];
  // Every body carries `detail` (API.md's example does): the occurrence's own explanation, or the title.
  return { type: 'about:blank', title, status, code, detail: extras.detail || title, ...extras.extensions };
}

/** Sends an RFC 9457 problem body for a known code. */
export function sendProblem(reply: FastifyReply, code: ErrorCode, extras: { detail?: string; headers?: Record<string, string>; extensions?: Record<string, unknown> } = {}): FastifyReply {
  if (extras.headers) reply.headers(extras.headers);
  return reply.code(ERRORS[code].status).type(PROBLEM_CONTENT_TYPE).send(problemBody(code, extras));
}

/**
 * Fastify's own errors for malformed requests, mapped to our codes. Anything
 * not listed and not a RampartError is unexpected and becomes internal_error.
 */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_EMPTY_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_TYPE: 'unsupported_media_type',
  FST_ERR_BAD_URL: 'invalid_request',
  FST_ERR_ASYNC_CONSTRAINT: 'invalid_request',
  FST_ERR_INVALID_URL: 'invalid_request',
};

export function registerProblemHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | RampartError | Error, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof RampartError) {
      if (error.status >= 500) request.log.warn({ code: error.code, detail: error.message }, 'request refused');
      else request.log.info({ code: error.code, detail: error.message }, 'request refused');
      return sendProblem(reply, error.code, { detail: error.publicDetail, headers: error.headers, extensions: error.extensions });
    }
    const fastifyError = error as FastifyError;
    // Refusals of malformed input are logged by code and place (ASVS V16.3.3), never with the
    // input or the parser's message: a JSON SyntaxError quotes the body, password included.
    if (fastifyError.validation) {
      const errors = fastifyError.validation.slice(0, 10).map((issue) => ({
        in: fastifyError.validationContext ?? 'body',
        pointer: issue.instancePath || '/',
        message: issue.message ?? 'is invalid',
      }));
      request.log.info({ code: 'invalid_request', errors }, 'request refused');
      return sendProblem(reply, 'invalid_request', { detail: 'The request does not match the schema.', extensions: { errors } });
    }
    // JSON syntax errors and prototype-poisoning attempts arrive as 400 SyntaxErrors.
    if (error instanceof SyntaxError || (fastifyError.statusCode === 400 && /JSON|prototype|__proto__|constructor/i.test(error.message))) {
      request.log.info({ code: 'invalid_json' }, 'request refused');
      return sendProblem(reply, 'invalid_json');
    }
    const mapped = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
    if (mapped) {
      request.log.info({ code: mapped, detail: fastifyError.code }, 'request refused');
      return sendProblem(reply, mapped);
    }
    if (fastifyError.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
      request.log.info({ err: error }, 'client error');
      return sendProblem(reply, fastifyError.statusCode === 404 ? 'not_found' : 'invalid_request');
    }
    const incidentId = randomUUID();
    request.log.error({ err: error, incidentId }, 'unexpected error');
    return sendProblem(reply, 'internal_error', { extensions: { incidentId } });
  });
}

/**
 * Fastify's answer to a URL it cannot decode (`%ff`) or a path parameter longer than
 * the router's limit bypasses the error handler and the onRequest hooks: it went out
 * as Fastify's own JSON (echoing the path) without security headers. Same problem
 * body and headers as every other refusal.
 */
export function frameworkErrorHandler(headers: Readonly<Record<string, string>>) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    request.log.info({ code: 'invalid_request', detail: error.code }, 'request refused');
    reply.headers(headers);
    reply.header('x-request-id', request.id);
    void sendProblem(reply, 'invalid_request');
  };
}

/**
 * Node refuses a request it cannot parse (header block over the limit, a bad request
 * line, Content-Length with Transfer-Encoding, a slow sender) before Fastify sees it;
 * Fastify's default answer was its own JSON without security headers. This writes an
 * RFC 9457 body with the same headers as every response, then closes the connection
 * (what follows on it cannot be framed). Only the error code is logged: the error's
 * rawPacket holds the request's headers, cookies and Authorization included.
 */
export function clientErrorHandler(headers: Readonly<Record<string, string>>, log: { info(object: object, message: string): void }) {
  const raw = (code: ErrorCode) => rawProblemResponse(code, headers);
  const answers = { invalid_request: raw('invalid_request'), request_headers_too_large: raw('request_headers_too_large'), request_timeout: raw('request_timeout') };
  return (error: Error & { code?: string }, socket: Socket): void => {
    // A reset connection has nobody to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const code = error.code === 'HPE_HEADER_OVERFLOW' ? 'request_headers_too_large' : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : 'invalid_request';
    log.info({ code, detail: error.code }, 'request refused before parsing');
    // As Node's own handler: never write into a response that has started.
    const pending = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && !pending?.headersSent) socket.end(answers[code]);
    socket.destroy(error);
  };
}

/**
 * Node hands a CONNECT request to the server's 'connect' listeners only, never to
 * Fastify, and with none it dropped the connection without a word. Rampart is no
 * proxy: the tunnel is refused like any other method nothing here serves (405, as
 * TRACE), with the problem body and headers of every refusal; `Allow` is empty, as
 * no method opens a tunnel (RFC 9110 §15.5.6). Only the method is logged: the
 * target and headers (Proxy-Authorization) are the client's.
 */
export function connectHandler(headers: Readonly<Record<string, string>>, log: { info(object: object, message: string): void }) {
  const answer = rawProblemResponse('method_not_allowed', headers, { allow: '' });
  return (_request: IncomingMessage, socket: Duplex): void => {
    log.info({ code: 'method_not_allowed', method: 'CONNECT' }, 'request refused before routing');
    // The connection has left Node's HTTP handling (and its timeouts): close it once the answer is out,
    // and at once for a peer that stops reading (what it sent after the request is never read).
    // Bytes the client sends on into the tunnel are read and dropped: unread ones would make the close a reset,
    // which can destroy the answer before the client reads it.
    socket.resume();
    socket.end(answer, () => socket.destroy());
    (socket as Socket).setTimeout(CONNECT_ANSWER_TIMEOUT_MS, () => socket.destroy());
  };
}

/** How long a refused CONNECT's answer may take to leave before the connection is cut. */
const CONNECT_ANSWER_TIMEOUT_MS = 5_000;

/** A whole HTTP/1.1 problem response, for answers written to the socket outside Fastify. */
function rawProblemResponse(code: ErrorCode, headers: Readonly<Record<string, string>>, extraHeaders: Readonly<Record<string, string>> = {}): string {
  const { status } = ERRORS[code];
  const body = JSON.stringify(problemBody(code));
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status]}`];
  for (const [name, value] of Object.entries({ ...headers, ...extraHeaders })) lines.push(`${name}: ${value}`);
  lines.push(`content-type: ${PROBLEM_CONTENT_TYPE}`, `content-length: ${Buffer.byteLength(body)}`, 'connection: close');
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}
