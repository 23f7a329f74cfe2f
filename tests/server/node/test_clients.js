// test_clients.js: calypsod through the npm client libraries, unchanged:
// ioredis (HELLO 3 on connect, INFO ready check, pipeline, multi,
// scanStream, Buffers) and node-redis (RESP3 by default: HELLO 3, maps and
// nulls; multi; scanIterator). Usage: node test_clients.js PORT [PWPORT]
// (PWPORT: a calypsod started with --requirepass pw). Prints
// "N passed, N failed".
'use strict';
const Redis = require('ioredis');
const { createClient } = require('redis');

const port = Number(process.argv[2]);
const pwport = Number(process.argv[3] || 0);
let passed = 0, failed = 0;
function check(ok, what, detail) {
  if (ok) passed++;
  else { failed++; console.log('FAIL: ' + what + (detail !== undefined ? ' -- ' + JSON.stringify(detail) : '')); }
}
function eq(got, want, what) {
  const g = Buffer.isBuffer(got) ? got.toString('hex') : JSON.stringify(got);
  const w = Buffer.isBuffer(want) ? want.toString('hex') : JSON.stringify(want);
  check(g === w, what, { got: g, want: w });
}

async function ioredisTests() {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
  eq(r.status, 'ready', 'ioredis: ready (INFO ready check passed)');
  eq(await r.ping(), 'PONG', 'ioredis: ping');
  eq(await r.set('io:k', 'v', 'EX', 100), 'OK', 'ioredis: set ex');
  eq(await r.get('io:k'), 'v', 'ioredis: get');
  eq(await r.get('io:none'), null, 'ioredis: get of a missing key');
  const bin = Buffer.from([0, 1, 2, 255, 0, 13, 10]);
  await r.set(Buffer.from('io:\x00bin'), bin);
  eq(await r.getBuffer(Buffer.from('io:\x00bin')), bin, 'ioredis: binary key and value');
  const pres = await r.pipeline().set('io:p', '1').incr('io:p').get('io:p').exec();
  eq(pres, [[null, 'OK'], [null, 2], [null, '2']], 'ioredis: pipeline');
  const mres = await r.multi().set('io:m', 'a').append('io:m', 'b').get('io:m').exec();
  eq(mres, [[null, 'OK'], [null, 2], [null, 'ab']], 'ioredis: multi/exec');
  const p = r.pipeline();
  for (let i = 0; i < 300; i++) p.set('io:scan:' + i, i);
  await p.exec();
  const seen = [];
  await new Promise((resolve, reject) => {
    const s = r.scanStream({ match: 'io:scan:*', count: 50 });
    s.on('data', (keys) => seen.push(...keys));
    s.on('end', resolve);
    s.on('error', reject);
  });
  eq(seen.length, 300, 'ioredis: scanStream finds every key once');
  eq(new Set(seen).size, 300, 'ioredis: scanStream, no duplicates');
  let err = null;
  try { await r.hset('io:h', 'f', 'v'); } catch (e) { err = e; }
  check(err && /^ERR unknown command 'hset'/.test(err.message), 'ioredis: hset is an unknown command', err && err.message);
  const info = await r.info('server');
  check(/redis_version:7\.0\.15/.test(info), 'ioredis: info server');
  eq(await r.quit(), 'OK', 'ioredis: quit');
}

async function ioredisAuth() {
  const r = new Redis({ port: pwport, host: '127.0.0.1', password: 'pw', lazyConnect: true });
  await r.connect();
  eq(await r.ping(), 'PONG', 'ioredis: password');
  await r.quit();
}

async function nodeRedisTests() {
  const c = createClient({ socket: { port, host: '127.0.0.1', reconnectStrategy: false } });
  let errors = 0;
  c.on('error', () => errors++);
  await c.connect();
  eq(await c.ping(), 'PONG', 'node-redis (RESP3 default): ping');
  eq(await c.set('nr:k', 'v', { EX: 100 }), 'OK', 'node-redis: set EX');
  eq(await c.get('nr:k'), 'v', 'node-redis: get');
  eq(await c.get('nr:none'), null, 'node-redis: RESP3 null');
  eq(await c.incrBy('nr:n', 5), 5, 'node-redis: incrBy');
  eq(await c.mGet(['nr:k', 'nr:none']), ['v', null], 'node-redis: mGet');
  const cfg = await c.configGet('maxclients');
  eq(JSON.parse(JSON.stringify(cfg)), { maxclients: '10000' }, 'node-redis: CONFIG GET (a RESP3 map)');
  const res = await c.multi().set('nr:m', '1').incr('nr:m').get('nr:m').exec();
  eq(res, ['OK', 2, '2'], 'node-redis: multi/exec');
  for (let i = 0; i < 120; i++) await c.set('nr:scan:' + i, 'x');
  const seen = [];
  for await (const keys of c.scanIterator({ MATCH: 'nr:scan:*', COUNT: 25 })) {
    if (Array.isArray(keys)) seen.push(...keys); else seen.push(keys);
  }
  eq(seen.length, 120, 'node-redis: scanIterator');
  eq(await c.ttl('nr:k') > 90, true, 'node-redis: ttl');
  eq(errors, 0, 'node-redis: no error events (HELLO 3 accepted)');
  await c.close();
}

async function nodeRedisAuth() {
  const c = createClient({ url: 'redis://default:pw@127.0.0.1:' + pwport, name: 'myapp',
                           socket: { reconnectStrategy: false } });
  c.on('error', () => {});
  await c.connect();
  eq(await c.clientGetName(), 'myapp', 'node-redis: HELLO 3 AUTH ... SETNAME');
  await c.close();
}

(async () => {
  const steps = [ioredisTests, nodeRedisTests];
  if (pwport) steps.push(ioredisAuth, nodeRedisAuth);
  for (const step of steps) {
    try { await step(); } catch (e) { check(false, step.name + ' threw', e && e.message); }
  }
  console.log(passed + ' passed, ' + failed + ' failed');
  process.exit(failed ? 1 : 0);
})();
