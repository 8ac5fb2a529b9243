import { Agent, request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Parsed JSON body, or undefined when the body is empty or not JSON. */
  body: any;
  setCookies: string[];
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** Raw body (sent as is); otherwise `json` is serialized. */
  raw?: string | Buffer;
  json?: unknown;
  /** Send no cookies from the jar for this request. */
  noCookies?: boolean;
}

/**
 * A tiny HTTPS client with a cookie jar, trusting exactly the server's own
 * (self-signed) certificate: tests verify TLS like a real client would.
 */
export class TestClient {
  readonly cookies = new Map<string, string>();
  csrfToken: string | null = null;
  /** Source address of the connections (e.g. 127.0.0.2, a second loopback address for IP allowlist tests). */
  localAddress: string | undefined;
  readonly #agent: Agent | undefined;

  constructor(readonly baseUrl: string, ca: string | null) {
    this.#agent = ca ? new Agent({ ca, keepAlive: true }) : undefined;
  }

  get(path: string, options: RequestOptions = {}) {
    return this.request('GET', path, options);
  }

  post(path: string, json?: unknown, options: RequestOptions = {}) {
    return this.request('POST', path, { ...options, json });
  }

  put(path: string, json?: unknown, options: RequestOptions = {}) {
    return this.request('PUT', path, { ...options, json });
  }

  patch(path: string, json?: unknown, options: RequestOptions = {}) {
    return this.request('PATCH', path, { ...options, json });
  }

  delete(path: string, options: RequestOptions = {}) {
    return this.request('DELETE', path, options);
  }

  /** Sends the CSRF header automatically for unsafe methods when a token is known. */
  request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const url = new URL(path, this.baseUrl);
    const headers: Record<string, string> = { ...options.headers };
    let payload: string | Buffer | undefined = options.raw;
    if (payload === undefined && options.json !== undefined) {
      payload = JSON.stringify(options.json);
      headers['content-type'] ??= 'application/json';
    }
    if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
    if (!options.noCookies && this.cookies.size > 0 && headers['cookie'] === undefined) {
      headers['cookie'] = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    }
    if (this.csrfToken && !['GET', 'HEAD'].includes(method) && headers['x-csrf-token'] === undefined) {
      headers['x-csrf-token'] = this.csrfToken;
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { method, headers, agent: this.#agent as never, ...(this.localAddress ? { localAddress: this.localAddress } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const setCookies = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
          for (const cookie of setCookies) {
            const [pair, ...attributes] = cookie.split(';');
            const eq = pair!.indexOf('=');
            const name = pair!.slice(0, eq).trim();
            const value = pair!.slice(eq + 1).trim();
            const expired = attributes.some((a) => /expires=Thu, 01 Jan 1970/i.test(a) || /max-age=0/i.test(a.trim()));
            if (expired || value === '') this.cookies.delete(name);
            else this.cookies.set(name, value);
          }
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = undefined;
          }
          const parsed = body as { csrfToken?: unknown } | undefined;
          if (parsed && typeof parsed === 'object' && typeof parsed.csrfToken === 'string') this.csrfToken = parsed.csrfToken;
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body, setCookies });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  close(): void {
    this.#agent?.destroy();
  }
}
