import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { TestServer } from './harness.js';

/**
 * Writes `request` byte for byte on a fresh connection (TLS, or plain TCP in the
 * loopback plain-HTTP mode), without closing our side, and resolves with
 * everything the server sent until it closed the connection. A server that never
 * answers or never closes fails after `timeoutMs`.
 */
export function rawExchange(t: TestServer, request: string, { timeoutMs = 5000 } = {}): Promise<string> {
  const port = Number(new URL(t.url).port);
  return new Promise((resolve, reject) => {
    const onConnect = () => socket.write(request);
    const socket: Socket = t.ca
      ? tlsConnect({ host: '127.0.0.1', port, ca: t.ca, servername: 'localhost' }, onConnect)
      : netConnect({ host: '127.0.0.1', port }, onConnect);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer and no close within ${timeoutMs} ms; got: ${JSON.stringify(Buffer.concat(chunks).toString('utf8'))}`)));
  });
}

/** The first response of a raw answer: status, lower-cased headers, body text (framed by Content-Length). */
export function parseRawAnswer(answer: string): { status: number; headers: Record<string, string>; text: string } {
  const split = answer.indexOf('\r\n\r\n');
  const head = split === -1 ? answer : answer.slice(0, split);
  const rest = split === -1 ? '' : answer.slice(split + 4);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  const length = headers['content-length'] === undefined ? rest.length : Number(headers['content-length']);
  return { status: Number(statusLine.split(' ')[1]), headers, text: rest.slice(0, length) };
}

/**
 * Writes each request on one connection only after the answer to the previous one
 * has arrived (no pipelining), and resolves with the answers (framed by
 * Content-Length) once the server closes the connection.
 */
export function rawConversation(t: TestServer, requests: string[], { timeoutMs = 5000 } = {}): Promise<string[]> {
  const port = Number(new URL(t.url).port);
  return new Promise((resolve, reject) => {
    const pending = [...requests];
    const answers: string[] = [];
    let buffered = '';
    const onConnect = () => socket.write(pending.shift()!);
    const socket: Socket = t.ca
      ? tlsConnect({ host: '127.0.0.1', port, ca: t.ca, servername: 'localhost' }, onConnect)
      : netConnect({ host: '127.0.0.1', port }, onConnect);
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (;;) {
        const split = buffered.indexOf('\r\n\r\n');
        if (split === -1) return;
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buffered.slice(0, split))?.[1] ?? 0);
        if (buffered.length < split + 4 + length) return;
        answers.push(buffered.slice(0, split + 4 + length));
        buffered = buffered.slice(split + 4 + length);
        if (pending.length > 0) socket.write(pending.shift()!);
      }
    });
    socket.on('close', () => resolve(answers));
    socket.on('error', reject);
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer and no close within ${timeoutMs} ms; got: ${JSON.stringify(answers)}`)));
  });
}
