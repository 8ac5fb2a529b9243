import { AsyncLocalStorage } from 'node:async_hooks';

/** Facts about the request an event happens in, carried implicitly through async calls. */
export interface EventContext {
  requestId: string;
}

/**
 * The HTTP layer runs each request inside `eventContext.run(…)`, so an event
 * recorded anywhere below it carries the request id (ASVS V16.2.1: entries let
 * an investigator tie the audit log to the server log) without every flow
 * passing it along.
 */
export const eventContext = new AsyncLocalStorage<EventContext>();
