import { createServer, type Server, type Socket, connect } from 'node:net';

/**
 * A TCP relay in front of the local Redis that a test can cut (an outage) and
 * start again on the same port (Redis back). Register `close` with the test's
 * `Resources` right after `start`, so a failing test still frees the port.
 */
export class RedisRelay {
  readonly #sockets = new Set<Socket>();
  #server: Server | null = null;
  #port = 0;

  constructor(private readonly redisPort = 6379) {}

  /** The URL clients use (valid once started; the port stays the same across restarts). */
  get url(): string {
    return `redis://127.0.0.1:${this.#port}`;
  }

  async start(): Promise<this> {
    const server = createServer((inbound) => {
      const outbound = connect(this.redisPort, '127.0.0.1');
      for (const socket of [inbound, outbound]) {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    await new Promise<void>((resolve) => server.listen(this.#port, '127.0.0.1', resolve));
    this.#server = server;
    this.#port = (server.address() as { port: number }).port;
    return this;
  }

  /** Stops listening and drops every relayed connection: clients see Redis go away. */
  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    const closed = server?.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  close(): Promise<void> {
    return this.cut();
  }
}
