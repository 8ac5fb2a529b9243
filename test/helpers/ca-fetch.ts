import { Agent, request } from 'node:https';

/**
 * A fetch over node:https that trusts exactly one CA (the test server's
 * self-signed certificate): Node 20's global fetch has no `ca` option. Counts
 * calls per path so tests can prove what was (not) fetched.
 */
export function caFetch(ca: string): typeof fetch & { calls: string[]; close(): void } {
  const agent = new Agent({ ca, keepAlive: true });
  const calls: string[] = [];
  const impl = (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    calls.push(url.pathname);
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => {
      headers[name] = value;
    });
    const body = typeof init.body === 'string' ? init.body : undefined;
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    return new Promise<Response>((resolve, reject) => {
      const req = request(url, { method: init.method ?? 'GET', headers, agent, family: 4, signal: init.signal ?? undefined }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') responseHeaders.set(name, value);
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500, headers: responseHeaders }));
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }) as typeof fetch & { calls: string[]; close(): void };
  impl.calls = calls;
  impl.close = () => agent.destroy();
  return impl;
}
