// node_clients.js: the npm client libraries through twemproxy in front of
// calypsod shards (the packages of tests/server/node, installed by `make
// calypsod-deps`). What the README's "Scaling out" says about them: the
// proxy closes a connection on HELLO, CLIENT and INFO, which both
// libraries send on connect by default (node-redis 6: HELLO 3, and CLIENT
// SETINFO even with RESP: 2; ioredis 6: HELLO 3, CLIENT SETINFO and its
// INFO ready check). node-redis works with { RESP: 2, disableClientInfo:
// true }; ioredis with { protocol: 2, enableReadyCheck: false,
// disableClientInfo: true }. The proxy answers QUIT by
// closing the connection without +OK: node-redis's quit() would wait for
// ever, so these clients are closed with destroy() and disconnect().
// Usage: node node_clients.js PROXY_PORT. Prints "N passed, N failed".
'use strict';
const path = require('path');
const mods = path.join(__dirname, '..', 'server', 'node', 'node_modules');
const Redis = require(path.join(mods, 'ioredis'));
const { createClient } = require(path.join(mods, 'redis'));

const port = Number(process.argv[2]);
let passed = 0, failed = 0;
function check(ok, what, detail) {
  if (ok) passed++;
  else { failed++; console.log('FAIL: ' + what + (detail !== undefined ? ' -- ' + JSON.stringify(detail) : '')); }
}
function eq(got, want, what) {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  check(g === w, what, { got: g, want: w });
}
const withTimeout = (p, ms) => Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), ms))]);

async function nodeRedisResp2() {
  const c = createClient({ RESP: 2, disableClientInfo: true,
                           socket: { port, host: '127.0.0.1', reconnectStrategy: false } });
  c.on('error', () => {});
  await c.connect();
  eq(await c.set('nr:a', '1'), 'OK', 'node-redis RESP 2: set');
  eq(await c.get('nr:a'), '1', 'node-redis RESP 2: get');
  const keys = Array.from({ length: 50 }, (_, i) => 'nr:k' + i);
  eq(await c.mSet(keys.map((k) => [k, k])), 'OK', 'node-redis RESP 2: mSet over shards');
  eq(await c.mGet(keys.concat(['nr:none'])), keys.concat([null]), 'node-redis RESP 2: mGet over shards');
  eq(await c.incr('nr:n'), 1, 'node-redis RESP 2: incr');
  eq(await c.expire('nr:a', 100), 1, 'node-redis RESP 2: expire');
  const ttl = await c.ttl('nr:a');
  check(ttl === 100 || ttl === 99, 'node-redis RESP 2: ttl', ttl);
  eq(await c.exists('nr:k3'), 1, 'node-redis RESP 2: exists');
  eq(await c.del(keys), 50, 'node-redis RESP 2: del over shards');
  c.destroy();   // not quit(): the proxy closes on QUIT without a reply
}

async function nodeRedisFails(what, options) {
  const c = createClient(Object.assign({ socket: { port, host: '127.0.0.1', reconnectStrategy: false,
                                                   connectTimeout: 2000 } }, options));
  c.on('error', () => {});
  let err = null;
  try {
    await withTimeout(c.connect().then(() => c.get('nr:a')), 4000);
  } catch (e) { err = e; }
  check(err !== null, 'node-redis ' + what + ': fails through the proxy');
  try { c.destroy(); } catch (e) { /* already closed */ }
}
const nodeRedisDefault = () => nodeRedisFails('default (HELLO 3)', {});
const nodeRedisClientInfo = () => nodeRedisFails('RESP 2 with CLIENT SETINFO', { RESP: 2 });

async function ioredisFails(what, options) {
  const r = new Redis(Object.assign({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0,
                                      retryStrategy: () => null, connectTimeout: 2000 }, options));
  r.on('error', () => {});
  let err = null;
  try {
    await withTimeout(r.connect().then(() => r.get('io:a')), 4000);
  } catch (e) { err = e; }
  check(err !== null, 'ioredis ' + what + ': fails through the proxy');
  r.disconnect();
}
const ioredisDefault = () => ioredisFails('default (HELLO 3)', {});
const ioredisReadyCheck = () => ioredisFails('protocol 2 with its INFO ready check',
                                             { protocol: 2, disableClientInfo: true });

async function ioredisNoReadyCheck() {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, protocol: 2, enableReadyCheck: false,
                        disableClientInfo: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  await r.connect();
  eq(await r.set('io:a', 'x'), 'OK', 'ioredis protocol 2, no ready check, no client info: set');
  eq(await r.get('io:a'), 'x', 'ioredis protocol 2, no ready check, no client info: get');
  const p = r.pipeline();
  for (let i = 0; i < 200; i++) p.set('io:p' + i, String(i));
  for (let i = 0; i < 200; i++) p.get('io:p' + i);
  const res = await p.exec();
  eq(res.slice(200).map((x) => x[1]), Array.from({ length: 200 }, (_, i) => String(i)),
     'ioredis protocol 2, no ready check, no client info: a pipeline of 400 commands over shards');
  eq(await r.mget('io:p1', 'io:p150', 'io:none'), ['1', '150', null], 'ioredis protocol 2, no ready check, no client info: mget');
  r.disconnect();
}

(async () => {
  for (const t of [nodeRedisResp2, nodeRedisDefault, nodeRedisClientInfo, ioredisDefault, ioredisReadyCheck,
                   ioredisNoReadyCheck]) {
    try { await t(); } catch (e) { check(false, t.name + ' threw', e.message); }
  }
  console.log(passed + ' passed, ' + failed + ' failed');
  process.exit(failed ? 1 : 0);
})();
