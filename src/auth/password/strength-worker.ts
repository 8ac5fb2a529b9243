/**
 * Worker thread body: scores passwords with zxcvbn off the event loop (see
 * `StrengthEstimator`). One message in, one message out.
 */
import { parentPort } from 'node:worker_threads';
import { estimateStrength } from './strength.js';

interface Request {
  id: number;
  password: string;
  userInputs: string[];
}

// Load the dictionaries before the first request, then say so: the time budget starts after this.
estimateStrength('warm-up', []);
parentPort!.postMessage({ ready: true });
parentPort!.on('message', (request: Request) => {
  try {
    parentPort!.postMessage({ id: request.id, result: estimateStrength(request.password, request.userInputs) });
  } catch (error) {
    parentPort!.postMessage({ id: request.id, error: error instanceof Error ? error.message : String(error) });
  }
});
