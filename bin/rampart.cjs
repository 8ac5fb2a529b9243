#!/usr/bin/env node
// The `rampart` command. CommonJS, so that this line runs before anything has used libuv's
// thread pool (an ES module entry is itself read through the pool): the threads alive now are
// Node's and V8's own (the garbage collector's helpers among them), and they keep their
// priority when the server lowers the pool's, where password hashes run
// (src/auth/password/thread-priority.ts).
'use strict';
const { readdirSync } = require('node:fs');

let startup = [];
try {
  startup = readdirSync('/proc/self/task').map(Number);
} catch {
  // Not Linux: thread priorities are not changed there.
}
globalThis[Symbol.for('rampart.startupThreads')] = new Set(startup);
import('./rampart.js').catch((error) => {
  console.error(error);
  process.exit(1);
});
