// http.test.js: apid over HTTP: every route and error status, binary keys
// and values, TTLs, paging while writes run, batches, the token, body and
// URI limits at the boundary and one past it, malformed percent-encoding,
// read-only mode, SIGTERM, and a flood of 10,000 connections.
'use strict';
const fs = require('fs');
const net = require('net');
const { spawnSync } = require('child_process');
const L = require('./lib');
const { req, raw, statusOf, pct, check, eq, sleep } = L;

const MAXV = 1024, MAXK = 64, MAXBODY = 1 << 20;

function tests(ctx) {
  const T = [];
  const t = (name, fn) => T.push([name, fn]);
  let S;                            // the shared server: small limits for boundary tests
  const P = () => S.port;

  t('start apid with small limits', async () => {
    S = await L.startServer(['--max-value-size', String(MAXV), '--max-key-size', String(MAXK),
                             '--max-body', String(MAXBODY)]);
    ctx.shared = S;
  });

  t('command line: --help, --version, bad arguments', async () => {
    let r = spawnSync(L.BIN, ['--help']);
    eq(r.status, 0, '--help exit'); check(/--dbpath DIR/.test(r.stdout), 'help text');
    r = spawnSync(L.BIN, ['--version']);
    eq(r.status, 0, '--version exit'); check(/^apid \d+\.\d+\.\d+/.test(r.stdout), 'version text');
    for (const args of [[], ['--dbpath'], ['--dbpath', '/tmp/x', '--bind', 'nope'], ['--dbpath', '/tmp/x', '--bind', 'example.com:80'],
                        ['--dbpath', '/tmp/x', '--bind', '127.0.0.1:65536'],
                        ['--dbpath', '/tmp/x', '--max-value-size', '0'], ['--dbpath', '/tmp/x', 'extra'],
                        ['--dbpath', '/tmp/x', '--token', 'bad token'], ['--dbpath', '/tmp/x', '--threads', '-1']]) {
      r = spawnSync(L.BIN, args);
      eq(r.status, 2, `exit of ${args.join(' ')}`);
    }
  });

  t('healthz and the root redirect', async () => {
    let r = await req(P(), 'GET', '/healthz');
    eq(r.status, 200, 'status'); eq(r.text, 'ok\n', 'body');
    r = await req(P(), 'GET', '/');
    eq(r.status, 302, 'root'); eq(r.headers.location, '/browse', 'location');
  });

  t('CalypsoDB routes: /set then /get, text and every byte', async () => {
    let r = await req(P(), 'POST', '/set/user%3A42/hello');
    eq(r.status, 200, 'set'); eq(r.json, { ok: true }, 'set body');
    r = await req(P(), 'GET', '/get/user%3A42');
    eq(r.status, 200, 'get'); eq(r.text, 'hello', 'value');
    eq(r.headers['content-type'], 'application/octet-stream', 'content type');
    const key = Buffer.from([0, 1, 0x2f, 0xff, 0x25, 0x20]);
    const val = Buffer.from([...Array(256).keys()]);
    r = await req(P(), 'POST', `/set/${pct(key)}/${pct(val)}`);
    eq(r.status, 200, 'binary set');
    r = await req(P(), 'GET', `/get/${pct(key)}`);
    eq(r.body, val, 'binary value');
    // A raw '/' after the key belongs to the value; '+' is a plus in a path.
    r = await req(P(), 'POST', '/set/path/a/b+c');
    r = await req(P(), 'GET', '/get/path');
    eq(r.text, 'a/b+c', 'slashes in the value');
    r = await req(P(), 'POST', '/set/empty/');
    r = await req(P(), 'GET', '/get/empty');
    eq(r.status, 200, 'empty value status'); eq(r.body.length, 0, 'empty value');
    r = await req(P(), 'HEAD', '/get/user%3A42');
    eq(r.status, 200, 'HEAD'); eq(r.headers['content-length'], '5', 'HEAD length'); eq(r.body.length, 0, 'HEAD body');
  });

  t('CalypsoDB routes: errors', async () => {
    let r = await req(P(), 'GET', '/get/nope');
    eq(r.status, 404, 'missing'); eq(r.json.code, 'not_found', 'code'); check(r.json.error, 'error text');
    r = await req(P(), 'GET', '/set/a/b');
    eq(r.status, 405, 'GET /set'); eq(r.headers.allow, 'POST', 'Allow'); eq(r.json.code, 'method_not_allowed', 'code');
    r = await req(P(), 'POST', '/get/a');
    eq(r.status, 405, 'POST /get'); eq(r.headers.allow, 'GET, HEAD', 'Allow');
    r = await req(P(), 'POST', '/set/onlykey');
    eq(r.status, 400, 'no value segment');
    r = await req(P(), 'POST', '/set//v');
    eq(r.status, 400, 'empty key'); eq(r.json.code, 'empty_key', 'code');
    r = await req(P(), 'GET', '/get/');
    eq(r.status, 404, '/get/ without key is no route');
  });

  t('malformed percent-encoding answers 400 and writes nothing', async () => {
    for (const p of ['/get/%zz', '/get/%4', '/get/abc%', '/set/a%g1/v', '/set/k/%%', '/v1/keys/%0', '/v1/keys?prefix=%zz',
                     '/v1/keys/a?ns=%q1', '/v1/keys/x?ttl=%']) {
      const method = p.startsWith('/set') ? 'POST' : 'GET';
      const r = await req(P(), method, p);
      eq(r.status, 400, `status of ${p}`); eq(r.json.code, 'bad_encoding', `code of ${p}`);
    }
    const r = await req(P(), 'GET', '/get/k');
    eq(r.status, 404, 'nothing written');
  });

  t('/v1/keys/{key}: PUT, GET raw and JSON, HEAD, DELETE', async () => {
    let r = await req(P(), 'PUT', '/v1/keys/doc', { body: 'héllo' });
    eq(r.status, 201, 'created'); eq(r.json, { ok: true, created: true }, 'body');
    r = await req(P(), 'PUT', '/v1/keys/doc', { body: 'héllo wörld' });
    eq(r.status, 200, 'replaced'); eq(r.json.created, false, 'created false');
    r = await req(P(), 'GET', '/v1/keys/doc');
    eq(r.text, 'héllo wörld', 'raw');
    r = await req(P(), 'GET', '/v1/keys/doc?format=json');
    eq(r.json.key, 'doc', 'key'); eq(r.json.value, 'héllo wörld', 'value'); eq(r.json.encoding, 'utf8', 'enc');
    eq(r.json.ttl_ms, null, 'no ttl'); eq(r.json.size, Buffer.byteLength('héllo wörld'), 'size');
    const bin = Buffer.from([0xff, 0xfe, 0, 1]);
    const bkey = Buffer.from([0xc3, 0x28]);                      // not UTF-8
    r = await req(P(), 'PUT', `/v1/keys/${pct(bkey)}`, { body: bin });
    eq(r.status, 201, 'binary put');
    r = await req(P(), 'GET', `/v1/keys/${pct(bkey)}?format=json`);
    eq(r.json.key_b64, bkey.toString('base64'), 'key_b64'); eq(r.json.value_b64, bin.toString('base64'), 'value_b64');
    eq(r.json.encoding, 'base64', 'encoding'); check(!('value' in r.json), 'no value field');
    r = await req(P(), 'GET', `/v1/keys/${pct(bkey)}`);
    eq(r.body, bin, 'raw binary');
    r = await req(P(), 'HEAD', `/v1/keys/${pct(bkey)}`);
    eq(r.status, 200, 'HEAD'); eq(r.headers['content-length'], '4', 'HEAD length');
    r = await req(P(), 'HEAD', '/v1/keys/absent');
    eq(r.status, 404, 'HEAD absent');
    r = await req(P(), 'GET', '/v1/keys/doc?format=xml');
    eq(r.status, 400, 'bad format');
    r = await req(P(), 'DELETE', '/v1/keys/doc');
    eq(r.status, 200, 'delete'); eq(r.json.ok, true, 'ok');
    r = await req(P(), 'DELETE', '/v1/keys/doc');
    eq(r.status, 404, 'delete again');
    r = await req(P(), 'GET', '/v1/keys/doc');
    eq(r.status, 404, 'gone');
    r = await req(P(), 'PATCH', '/v1/keys/doc');
    eq(r.status, 405, 'PATCH'); eq(r.headers.allow, 'GET, HEAD, PUT, DELETE', 'Allow');
    r = await req(P(), 'PUT', '/v1/keys/', { body: 'x' });
    eq(r.status, 404, 'no key: no route');
  });

  t('TTLs: in ms and with units, expiry, bad values', async () => {
    let r = await req(P(), 'PUT', '/v1/keys/short?ttl=300', { body: 'v' });
    eq(r.status, 201, 'put ttl');
    r = await req(P(), 'GET', '/v1/keys/short?format=json');
    check(r.json.ttl_ms > 0 && r.json.ttl_ms <= 300, `ttl_ms ${r.json.ttl_ms}`);
    check(Math.abs(r.json.expires_at_ms - (Date.now() + r.json.ttl_ms)) < 1000, 'expires_at_ms');
    for (const [ttl, ms] of [['250ms', 250], ['2s', 2000], ['3m', 180000], ['1h', 3600000], ['2d', 172800000]]) {
      r = await req(P(), 'PUT', `/v1/keys/t-${ttl}?ttl=${ttl}`, { body: 'v' });
      eq(r.status, 201, `put ${ttl}`);
      r = await req(P(), 'GET', `/v1/keys/t-${ttl}?format=json`);
      check(r.json.ttl_ms <= ms && r.json.ttl_ms > ms - 1000, `${ttl}: ttl_ms ${r.json.ttl_ms}`);
    }
    await sleep(450);
    r = await req(P(), 'GET', '/v1/keys/short');
    eq(r.status, 404, 'expired'); eq(r.json.code, 'not_found', 'expired code');
    r = await req(P(), 'GET', '/get/short');
    eq(r.status, 404, 'expired via /get');
    for (const bad of ['0', '-5', 'abc', '5x', '', '1.5s', '99999999999999999999', '36600d']) {
      r = await req(P(), 'PUT', `/v1/keys/badttl?ttl=${encodeURIComponent(bad)}`, { body: 'v' });
      eq(r.status, 400, `ttl=${bad}`); eq(r.json.code, 'bad_ttl', `code for ${bad}`);
    }
    r = await req(P(), 'GET', '/v1/keys/badttl');
    eq(r.status, 404, 'bad ttl wrote nothing');
  });

  t('key size: max_key_size is accepted, one byte more is 400', async () => {
    let r = await req(P(), 'PUT', `/v1/keys/${'k'.repeat(MAXK)}`, { body: 'v' });
    eq(r.status, 201, 'at the limit');
    r = await req(P(), 'PUT', `/v1/keys/${'k'.repeat(MAXK + 1)}`, { body: 'v' });
    eq(r.status, 400, 'past the limit'); eq(r.json.code, 'key_too_large', 'code');
    r = await req(P(), 'POST', `/set/${'k'.repeat(MAXK + 1)}/v`);
    eq(r.status, 400, '/set past the limit');
  });

  t('value size: max_value_size is accepted, one byte more is 413', async () => {
    let r = await req(P(), 'PUT', '/v1/keys/big', { body: Buffer.alloc(MAXV, 7) });
    eq(r.status, 201, 'at the limit');
    r = await req(P(), 'GET', '/v1/keys/big');
    eq(r.body.length, MAXV, 'stored whole');
    r = await req(P(), 'PUT', '/v1/keys/big2', { body: Buffer.alloc(MAXV + 1, 7) });
    eq(r.status, 413, 'past the limit'); eq(r.json.code, 'too_large', 'code');
    r = await req(P(), 'POST', `/set/big3/${'v'.repeat(MAXV + 1)}`);
    eq(r.status, 413, '/set past the limit'); eq(r.json.code, 'value_too_large', 'code');
    r = await req(P(), 'GET', '/v1/keys/big2');
    eq(r.status, 404, 'nothing written');
  });

  t('413 comes before the body is read (Content-Length, Expect: 100-continue)', async () => {
    // Headers only: the reply must come without any body byte sent.
    let out = await raw(P(), `PUT /v1/keys/huge HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n`, 3000);
    eq(statusOf(out), 413, 'declared 1 GB');
    check(/"code":"too_large"/.test(out.toString()), 'JSON error');
    out = await raw(P(), `PUT /v1/keys/huge HTTP/1.1\r\nHost: x\r\nContent-Length: ${MAXV + 1}\r\nExpect: 100-continue\r\n\r\n`, 3000);
    eq(statusOf(out), 413, 'with Expect');
    check(!/100 Continue/.test(out.toString()), 'no 100 Continue');
    out = await raw(P(), `POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: ${MAXBODY + 1}\r\n\r\n`, 3000);
    eq(statusOf(out), 413, 'batch body over --max-body');
    // Chunked, no length: read up to the limit, then 413 at its end.
    const chunk = Buffer.alloc(MAXV, 1);
    const body = Buffer.concat([Buffer.from(`PUT /v1/keys/chunky HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`),
                                Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n1\r\nx\r\n0\r\n\r\n')]);
    out = await raw(P(), body, 3000);
    eq(statusOf(out), 413, 'chunked past the limit');
    const r = await req(P(), 'GET', '/v1/keys/chunky');
    eq(r.status, 404, 'chunked: nothing written');
  });

  t('414: the longest request target passes, one byte more is refused', async () => {
    const base = '/v1/keys/';
    const maxUri = 16384;
    let r = await req(P(), 'GET', base + 'a'.repeat(maxUri - base.length));
    eq(r.status, 400, 'at the limit: answered (key too large)');
    r = await req(P(), 'GET', base + 'a'.repeat(maxUri - base.length + 1));
    eq(r.status, 414, 'past the limit'); eq(r.json.code, 'uri_too_long', 'code');
    const out = await raw(P(), `GET /${'x'.repeat(100000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 3000);
    check(statusOf(out) === 414 || statusOf(out) === 431 || out.length === 0, `huge target: ${statusOf(out)}`);
    r = await req(P(), 'GET', '/healthz');
    eq(r.status, 200, 'still serving');
  });

  t('404 and 405 on unknown routes and methods', async () => {
    let r = await req(P(), 'GET', '/nope');
    eq(r.status, 404, 'unknown'); eq(r.json.code, 'no_route', 'code');
    r = await req(P(), 'GET', '/v1/batch');
    eq(r.status, 405, 'GET batch'); eq(r.headers.allow, 'POST', 'Allow');
    r = await req(P(), 'DELETE', '/v1/stats');
    eq(r.status, 405, 'DELETE stats');
    r = await req(P(), 'GET', '/v1/merge');
    eq(r.status, 405, 'GET merge');
    r = await req(P(), 'GET', '/browse/put');
    eq(r.status, 405, 'GET on a dashboard form route');
  });

  t('listing: pages in key order, prefix, range, limits, cursors', async () => {
    const srv = await L.startServer();
    try {
      const keys = [];
      for (let i = 0; i < 250; i++) keys.push(`k${String(i).padStart(3, '0')}`);
      for (const k of keys) await req(srv.port, 'PUT', `/v1/keys/${k}`, { body: 'v' });
      for (const k of ['a1', 'z1', 'k']) await req(srv.port, 'PUT', `/v1/keys/${k}`, { body: 'v' });
      const bin = Buffer.from([0x6b, 0xff]);
      await req(srv.port, 'PUT', `/v1/keys/${pct(bin)}`, { body: 'v' });
      let seen = [], after = null, pages = 0;
      do {
        const r = await req(srv.port, 'GET', `/v1/keys?prefix=k0&limit=100${after ? '&after=' + after : ''}`);
        eq(r.status, 200, 'page');
        seen.push(...r.json.keys.map(o => o.key));
        eq(r.json.count, r.json.keys.length, 'count');
        after = r.json.next; pages++;
      } while (after);
      eq(pages, 1, 'k0 prefix fits one page'); eq(seen, keys.slice(0, 100), 'k0..');
      seen = []; after = null; pages = 0;
      do {
        const r = await req(srv.port, 'GET', `/v1/keys?prefix=k&limit=100${after ? '&after=' + after : ''}`);
        seen.push(...r.json.keys.map(o => o.key ?? Buffer.from(o.key_b64, 'base64').toString('latin1')));
        after = r.json.next; pages++;
      } while (after);
      eq(pages, 3, 'pages'); eq(seen.length, 252, 'count with k and the binary key');
      eq(seen[0], 'k', 'k first'); eq(seen.slice(1, 251), keys, 'in order');
      let r = await req(srv.port, 'GET', '/v1/keys?start=k100&end=k104');
      eq(r.json.keys.map(o => o.key), ['k100', 'k101', 'k102', 'k103', 'k104'], 'range inclusive');
      eq(r.json.next, null, 'range end');
      r = await req(srv.port, 'GET', '/v1/keys?limit=1');
      eq(r.json.keys, [{ key: 'a1' }], 'first key');
      r = await req(srv.port, 'GET', `/v1/keys?prefix=${pct(bin)}`);
      eq(r.json.keys, [{ key_b64: bin.toString('base64') }], 'binary key as key_b64');
      r = await req(srv.port, 'GET', '/v1/keys?limit=1000');
      eq(r.status, 200, 'limit 1000'); eq(r.json.count, 254, 'all keys');
      for (const [q, code] of [['limit=0', 'bad_limit'], ['limit=1001', 'bad_limit'], ['limit=x', 'bad_limit'],
                               ['limit=-1', 'bad_limit'], ['after=%25%25', 'bad_cursor'], ['after=!!', 'bad_cursor'],
                               ['prefix=a&start=b', 'bad_request'], ['start=b&end=a', 'invalid_range']]) {
        r = await req(srv.port, 'GET', `/v1/keys?${q}`);
        eq(r.status, 400, `status of ${q}`); eq(r.json.code, code, `code of ${q}`);
      }
    } finally { await L.stopServer(srv); }
  });

  t('paging survives concurrent writes: each stable key once, in order', async () => {
    const srv = await L.startServer();
    const rand = L.rng(L.SEED);
    try {
      const stable = [];
      for (let i = 0; i < 2000; i++) stable.push(`s/${String(i * 2).padStart(5, '0')}`);
      await req(srv.port, 'POST', '/v1/batch', { body: JSON.stringify(stable.map(k => ({ op: 'put', key: k, value: 'v' }))) });
      let stop = false, writes = 0;
      const writer = (async () => {
        while (!stop) {
          const i = Math.floor(rand() * 4000);
          const tmp = `s/${String(i * 2 + 1).padStart(5, '0')}`;      // between stable keys
          const r = rand();
          if (r < 0.5) await req(srv.port, 'PUT', `/v1/keys/${encodeURIComponent(tmp)}`, { body: 'tmp' });
          else if (r < 0.8) await req(srv.port, 'DELETE', `/v1/keys/${encodeURIComponent(tmp)}`);
          else await req(srv.port, 'PUT', `/v1/keys/${encodeURIComponent(stable[i % 2000])}`, { body: 'v2' });
          writes++;
        }
      })();
      const seen = [];
      let after = null;
      do {
        const r = await req(srv.port, 'GET', `/v1/keys?prefix=s%2F&limit=37${after ? '&after=' + after : ''}`);
        eq(r.status, 200, 'page');
        seen.push(...r.json.keys.map(o => o.key));
        after = r.json.next;
        await sleep(1);
      } while (after);
      stop = true;
      await writer;
      check(writes > 50, `writes ran meanwhile (${writes})`);
      for (let i = 1; i < seen.length; i++) check(seen[i - 1] < seen[i], `order at ${i}: ${seen[i - 1]} ${seen[i]}`);
      const got = seen.filter(k => Number(k.slice(2)) % 2 === 0);
      eq(got, stable, 'every stable key exactly once');
    } finally { await L.stopServer(srv); }
  });

  t('batch: puts, base64, TTL and deletes applied', async () => {
    await req(P(), 'PUT', '/v1/keys/b-old', { body: 'x' });
    const ops = [
      { op: 'put', key: 'b-1', value: 'one' },
      { op: 'put', key_b64: Buffer.from([0, 0xff]).toString('base64'), value_b64: Buffer.from([1, 2, 3]).toString('base64') },
      { op: 'put', key: 'b-ttl', value: 't', ttl: '1h' },
      { op: 'put', key: 'b-ttl2', value: 't', ttl: 5000 },
      { op: 'put', key: 'b-empty', value: '' },
      { op: 'delete', key: 'b-old' },
    ];
    let r = await req(P(), 'POST', '/v1/batch', { body: JSON.stringify(ops) });
    eq(r.status, 200, 'status'); eq(r.json, { ok: true, applied: 6 }, 'body');
    eq((await req(P(), 'GET', '/v1/keys/b-1')).text, 'one', 'put');
    eq((await req(P(), 'GET', '/v1/keys/%00%FF')).body, Buffer.from([1, 2, 3]), 'base64 put');
    const j = (await req(P(), 'GET', '/v1/keys/b-ttl?format=json')).json;
    check(j.ttl_ms > 3590000, 'ttl set');
    check((await req(P(), 'GET', '/v1/keys/b-ttl2?format=json')).json.ttl_ms <= 5000, 'numeric ttl in ms');
    eq((await req(P(), 'GET', '/v1/keys/b-empty')).body.length, 0, 'empty value');
    eq((await req(P(), 'GET', '/v1/keys/b-old')).status, 404, 'deleted');
    r = await req(P(), 'POST', '/v1/batch', { body: '[]' });
    eq(r.json, { ok: true, applied: 0 }, 'empty batch');
  });

  t('batch: any bad operation fails the whole batch, nothing written', async () => {
    const good = { op: 'put', key: 'nb-1', value: 'x' };
    const cases = [
      ['not json', 400, 'bad_json'], ['{"op":"put"}', 400, 'bad_batch'],
      [JSON.stringify([good, { op: 'put', key: 'nb-2', value_b64: '@@@' }]), 400, 'bad_batch'],
      [JSON.stringify([good, { op: 'frob', key: 'nb-2' }]), 400, 'bad_batch'],
      [JSON.stringify([good, { op: 'put', value: 'x' }]), 400, 'bad_batch'],
      [JSON.stringify([good, { op: 'put', key: '', value: 'x' }]), 400, 'bad_batch'],
      [JSON.stringify([good, { op: 'put', key: 'a', key_b64: 'YQ==', value: 'x' }]), 400, 'bad_batch'],
      [JSON.stringify([good, { op: 'put', key: 'k'.repeat(MAXK + 1), value: 'x' }]), 400, 'bad_batch'],
      [JSON.stringify([good, { op: 'put', key: 'nb-2', value: 'x', ttl: '0' }]), 400, 'bad_batch'],
      [JSON.stringify([good, { op: 'put', key: 'nb-2', value: 'x', ttl: -3 }]), 400, 'bad_batch'],
      [JSON.stringify([good, { op: 'delete', key: 'nb-2', value: 'x' }]), 400, 'bad_batch'],
      [JSON.stringify([good, { op: 'put', key: 'nb-2' }]), 400, 'bad_batch'],
      [JSON.stringify([good, 7]), 400, 'bad_batch'],
      [JSON.stringify([good, { op: 'put', key: 'nb-2', value: 'v'.repeat(MAXV + 1) }]), 413, 'too_large'],
    ];
    for (const [body, status, code] of cases) {
      const r = await req(P(), 'POST', '/v1/batch', { body });
      eq(r.status, status, `status for ${body.slice(0, 60)}`); eq(r.json.code, code, `code for ${body.slice(0, 60)}`);
      eq((await req(P(), 'GET', '/v1/keys/nb-1')).status, 404, `nothing written by ${body.slice(0, 60)}`);
    }
  });

  t('mget: many keys in one request, in order, found or not', async () => {
    const ops = [
      { op: 'put', key: 'mg-1', value: 'one' },
      { op: 'put', key: 'mg-2', value: '' },
      { op: 'put', key_b64: Buffer.from([0, 0xfe]).toString('base64'), value_b64: Buffer.from([0xff, 0]).toString('base64') },
      { op: 'put', key: 'mg-brief', value: 'x', ttl: 1 },
    ];
    eq((await req(P(), 'POST', '/v1/batch', { body: JSON.stringify(ops) })).status, 200, 'setup');
    await new Promise(res => setTimeout(res, 20));
    const keys = ['mg-2', 'mg-none', { key_b64: Buffer.from([0, 0xfe]).toString('base64') }, 'mg-1', 'mg-brief', 'mg-1'];
    const r = await req(P(), 'POST', '/v1/mget', { body: JSON.stringify(keys) });
    eq(r.status, 200, 'status');
    eq(r.json.items, [
      { key: 'mg-2', found: true, value: '', encoding: 'utf8', size: 0 },
      { key: 'mg-none', found: false },
      { key_b64: Buffer.from([0, 0xfe]).toString('base64'), found: true, value_b64: Buffer.from([0xff, 0]).toString('base64'), encoding: 'base64', size: 2 },
      { key: 'mg-1', found: true, value: 'one', encoding: 'utf8', size: 3 },
      { key: 'mg-brief', found: false },
      { key: 'mg-1', found: true, value: 'one', encoding: 'utf8', size: 3 },
    ], 'items, in the order asked (an expired key is not found)');
    eq((await req(P(), 'POST', '/v1/mget', { body: '[]' })).json, { items: [] }, 'no keys');
    eq((await req(P(), 'GET', '/v1/mget')).status, 405, 'GET mget');
  });

  t('mget: a bad key fails the request; 10000 keys pass, 10001 are refused', async () => {
    const cases = ['not json', '{"keys":[]}', '[7]', '[""]', JSON.stringify(['k'.repeat(MAXK + 1)]),
                   '[{"key_b64":"@@@"}]', '[{"key_b64":"YQ==","x":1}]', '[{"key":"a"}]'];
    for (const body of cases) {
      const r = await req(P(), 'POST', '/v1/mget', { body });
      eq(r.status, 400, `status for ${body.slice(0, 40)}`);
      check(r.json.code === 'bad_json' || r.json.code === 'bad_mget', `code for ${body.slice(0, 40)}: ${r.json.code}`);
    }
    eq((await req(P(), 'POST', '/v1/mget', { body: JSON.stringify(['q'.repeat(MAXK)]) })).json.items[0].found,
       false, 'a key of the maximum size is looked up');
    const mk = n => JSON.stringify(Array.from({ length: n }, (_, i) => `mk${i}`));
    let r = await req(P(), 'POST', '/v1/mget', { body: mk(10001) });
    eq(r.status, 400, '10001 keys');
    r = await req(P(), 'POST', '/v1/mget', { body: mk(10000) });
    eq(r.status, 200, '10000 keys'); eq(r.json.items.length, 10000, 'every key answered');
  });

  t('batch: 10000 operations pass, 10001 are refused', async () => {
    const mk = n => JSON.stringify(Array.from({ length: n }, (_, i) => ({ op: 'put', key: `bb${i}`, value: '' })));
    let r = await req(P(), 'POST', '/v1/batch', { body: mk(10001) });
    eq(r.status, 400, '10001'); eq((await req(P(), 'GET', '/v1/keys/bb0')).status, 404, 'nothing written');
    r = await req(P(), 'POST', '/v1/batch', { body: mk(10000) });
    eq(r.status, 200, '10000'); eq(r.json.applied, 10000, 'applied');
    eq((await req(P(), 'GET', '/v1/keys/bb9999')).status, 200, 'last written');
  });

  t('stats and merge', async () => {
    // A server of its own: keys with short TTLs elsewhere would expire mid-test.
    const srv = await L.startServer();
    try {
      let r = await req(srv.port, 'GET', '/v1/stats');
      eq(r.status, 200, 'stats');
      for (const f of ['keys', 'bytes', 'dead_bytes', 'datafiles', 'merges', 'keydir_bytes', 'uptime_ms'])
        check(Number.isInteger(r.json[f]), `field ${f}`);
      eq(r.json.keys, 0, 'empty');
      for (let i = 0; i < 20; i++) await req(srv.port, 'PUT', `/v1/keys/s${i}`, { body: 'x'.repeat(100) });
      for (let i = 0; i < 10; i++) await req(srv.port, 'PUT', `/v1/keys/s${i}`, { body: 'y'.repeat(100) });
      r = await req(srv.port, 'GET', '/v1/stats');
      eq(r.json.keys, 20, 'keys'); check(r.json.dead_bytes > 0, 'dead bytes after overwrites');
      eq(r.json.merges, 0, 'no merge yet'); eq(r.json.read_only, false, 'writable');
      r = await req(srv.port, 'POST', '/v1/merge');
      eq(r.status, 200, 'merge'); check(Number.isInteger(r.json.bytes_after), 'bytes_after');
      r = await req(srv.port, 'GET', '/v1/stats');
      eq(r.json.merges, 1, 'merges counted'); eq(r.json.keys, 20, 'keys kept');
      eq((await req(srv.port, 'GET', '/v1/keys/s3')).text, 'y'.repeat(100), 'newest value kept');
    } finally { await L.stopServer(srv); }
  });

  // >> namespaces: a server of their own, so their keys touch no other test
  let NS;
  const NP = () => NS.port;
  const names = r => r.json.namespaces.map(n => n.name);

  t('namespaces: create, list, nested, parent missing, "default" reserved', async () => {
    NS = await L.startServer([]);
    let r = await req(NP(), 'GET', '/v1/namespaces');
    eq(r.status, 200, 'list'); eq(r.json.namespaces, [{ name: 'default' }], 'only default at first');
    r = await req(NP(), 'PUT', '/v1/namespaces/a');
    eq(r.status, 201, 'create a'); eq(r.json, { ok: true, created: true }, 'body');
    r = await req(NP(), 'PUT', '/v1/namespaces/a');
    eq(r.status, 200, 'create a again'); eq(r.json.created, false, 'not created twice');
    eq((await req(NP(), 'PUT', '/v1/namespaces/a%2Fb')).status, 201, 'create a/b');
    eq((await req(NP(), 'PUT', '/v1/namespaces/b')).status, 201, 'create b');
    r = await req(NP(), 'PUT', '/v1/namespaces/x%2Fy');
    eq(r.status, 404, 'parent missing'); eq(r.json.code, 'no_namespace', 'code');
    for (const m of ['PUT', 'DELETE']) {
      r = await req(NP(), m, '/v1/namespaces/default');
      eq(r.status, 400, `${m} default`); eq(r.json.code, 'bad_namespace', 'code');
    }
    eq(names(await req(NP(), 'GET', '/v1/namespaces')), ['default', 'a', 'b'], 'default first, then top level');
    eq(names(await req(NP(), 'GET', '/v1/namespaces?parent=a')), ['a/b'], 'children of a');
    eq(names(await req(NP(), 'GET', '/v1/namespaces?parent=a%2Fb')), [], 'a/b has none');
    eq(names(await req(NP(), 'GET', '/v1/namespaces?parent=default')), [], 'default has none');
    r = await req(NP(), 'GET', '/v1/namespaces?parent=zz');
    eq(r.status, 404, 'parent missing'); eq(r.json.code, 'no_namespace', 'code');
    r = await req(NP(), 'GET', '/v1/namespaces?parent=a%2F%2Fb');
    eq(r.status, 400, 'bad parent'); eq(r.json.code, 'bad_namespace', 'code');
    r = await req(NP(), 'GET', '/v1/namespaces/a');
    eq(r.status, 200, 'info'); eq(r.json, { name: 'a', keys: 0 }, 'info body');
    eq((await req(NP(), 'GET', '/v1/namespaces/zz')).status, 404, 'info of a missing one');
    // A binary name lists as name_b64.
    eq((await req(NP(), 'PUT', '/v1/namespaces/b%2F%FF%00')).status, 201, 'binary name');
    r = await req(NP(), 'GET', '/v1/namespaces?parent=b');
    eq(r.json.namespaces, [{ name_b64: Buffer.from([0x62, 0x2f, 0xff, 0]).toString('base64') }], 'name_b64');
  });

  t('namespaces: the same key in two namespaces is two keys, over every route', async () => {
    const ns = '?ns=a', nb = '?ns=a%2Fb';
    eq((await req(NP(), 'PUT', '/v1/keys/k' + ns, { body: 'in-a' })).status, 201, 'PUT in a');
    eq((await req(NP(), 'PUT', '/v1/keys/k', { body: 'in-default' })).status, 201, 'PUT in default (new there too)');
    eq((await req(NP(), 'PUT', '/v1/keys/k?ns=default', { body: 'in-default!' })).status, 200, 'ns=default is the database');
    eq((await req(NP(), 'POST', '/set/k/in-b' + nb)).status, 200, '/set in a/b');
    eq((await req(NP(), 'GET', '/v1/keys/k' + ns)).text, 'in-a', 'GET in a');
    eq((await req(NP(), 'GET', '/v1/keys/k')).text, 'in-default!', 'GET in default');
    eq((await req(NP(), 'GET', '/v1/keys/k?ns=')).text, 'in-default!', 'empty ns is default');
    eq((await req(NP(), 'GET', '/get/k' + nb)).text, 'in-b', '/get in a/b');
    eq((await req(NP(), 'GET', '/get/k' + ns)).text, 'in-a', '/get in a');
    let r = await req(NP(), 'HEAD', '/v1/keys/k' + ns);
    eq(r.status, 200, 'HEAD'); eq(r.headers['content-length'], '4', 'HEAD length of a\'s value');
    eq((await req(NP(), 'HEAD', '/v1/keys/k?ns=b')).status, 404, 'HEAD in b: absent');
    r = await req(NP(), 'GET', '/v1/keys/k?format=json&ns=a%2Fb');
    eq(r.json.value, 'in-b', 'format=json in a/b');
    eq((await req(NP(), 'PUT', '/v1/keys/t' + ns + '&ttl=1h', { body: 'x' })).status, 201, 'PUT with ttl in a');
    r = await req(NP(), 'GET', '/v1/keys/t?format=json&ns=a');
    check(r.json.ttl_ms > 3500000, 'ttl kept in a');
    eq((await req(NP(), 'GET', '/v1/keys/t')).status, 404, 't absent in default');
    eq((await req(NP(), 'GET', '/v1/keys' + ns)).json.keys, [{ key: 'k' }, { key: 't' }], 'listing of a');
    eq((await req(NP(), 'GET', '/v1/keys' + nb)).json.keys, [{ key: 'k' }], 'listing of a/b');
    eq((await req(NP(), 'GET', '/v1/keys?prefix=k&ns=b')).json.keys, [], 'listing of b');
    eq((await req(NP(), 'GET', '/v1/keys')).json.keys, [{ key: 'k' }], 'listing of default');
    r = await req(NP(), 'GET', '/v1/keys?ns=a&limit=1');
    r = await req(NP(), 'GET', `/v1/keys?ns=a&limit=1&after=${r.json.next}`);
    eq(r.json.keys, [{ key: 't' }], 'paging inside a');
    eq((await req(NP(), 'DELETE', '/v1/keys/k' + ns)).status, 200, 'DELETE in a');
    eq((await req(NP(), 'DELETE', '/v1/keys/k' + ns)).status, 404, 'DELETE in a again');
    eq((await req(NP(), 'GET', '/v1/keys/k' + ns)).status, 404, 'gone from a');
    eq((await req(NP(), 'GET', '/v1/keys/k')).text, 'in-default!', 'default untouched');
    eq((await req(NP(), 'GET', '/get/k' + nb)).text, 'in-b', 'a/b untouched');
  });

  t('namespaces: batch, mget and stats with ?ns=', async () => {
    let r = await req(NP(), 'POST', '/v1/batch?ns=b', { body: JSON.stringify([
      { op: 'put', key: 'b1', value: 'one' }, { op: 'put', key: 'b2', value: 'two' },
      { op: 'put', key: 'k', value: 'in-b-ns' }, { op: 'delete', key: 'b2' }]) });
    eq(r.status, 200, 'batch in b'); eq(r.json.applied, 4, 'applied');
    eq((await req(NP(), 'GET', '/v1/keys/b1?ns=b')).text, 'one', 'b1 in b');
    eq((await req(NP(), 'GET', '/v1/keys/b1')).status, 404, 'b1 not in default');
    eq((await req(NP(), 'GET', '/v1/keys/k')).text, 'in-default!', 'batch left default\'s k');
    r = await req(NP(), 'POST', '/v1/batch', { body: '[{"op":"delete","key":"k"}]' });
    eq(r.status, 200, 'batch in default');
    eq((await req(NP(), 'GET', '/v1/keys/k?ns=b')).text, 'in-b-ns', 'b\'s k survives default\'s delete');
    r = await req(NP(), 'POST', '/v1/mget?ns=b', { body: '["b1","b2","k","t"]' });
    eq(r.status, 200, 'mget in b');
    eq(r.json.items.map(i => [i.key, i.found, i.value]),
       [['b1', true, 'one'], ['b2', false, undefined], ['k', true, 'in-b-ns'], ['t', false, undefined]], 'mget items of b');
    r = await req(NP(), 'POST', '/v1/mget?ns=a', { body: '["b1","t"]' });
    eq(r.json.items.map(i => i.found), [false, true], 'mget items of a');
    eq((await req(NP(), 'GET', '/v1/stats?ns=b')).json.keys, 2, 'stats of b');
    eq((await req(NP(), 'GET', '/v1/stats?ns=a')).json.keys, 1, 'stats of a');
    eq((await req(NP(), 'GET', '/v1/stats?ns=a%2Fb')).json.keys, 1, 'stats of a/b');
    eq((await req(NP(), 'GET', '/v1/stats')).json.keys, 0, 'stats of default');
    eq((await req(NP(), 'GET', '/v1/namespaces/b')).json.keys, 2, 'info of b');
  });

  t('namespaces: one batch across namespaces commits whole; a bad or missing "ns" writes nothing', async () => {
    let r = await req(NP(), 'POST', '/v1/batch?ns=b', { body: JSON.stringify([
      { op: 'put', key: 'x1', value: 'b-x1' }, { op: 'put', ns: 'a', key: 'x1', value: 'a-x1' },
      { op: 'put', ns: 'default', key: 'x1', value: 'd-x1' }, { op: 'put', key: 'x2', value: 'b-x2' },
      { op: 'put', ns: 'a/b', key: 'x1', value: 'ab-x1' }]) });
    eq(r.status, 200, 'cross-namespace batch'); eq(r.json.applied, 5, 'applied');
    eq((await req(NP(), 'GET', '/v1/keys/x1?ns=b')).text, 'b-x1', 'b');
    eq((await req(NP(), 'GET', '/v1/keys/x2?ns=b')).text, 'b-x2', 'b after a switch back');
    eq((await req(NP(), 'GET', '/v1/keys/x1?ns=a')).text, 'a-x1', 'a');
    eq((await req(NP(), 'GET', '/v1/keys/x1')).text, 'd-x1', 'default');
    eq((await req(NP(), 'GET', '/v1/keys/x1?ns=a%2Fb')).text, 'ab-x1', 'a/b');
    for (const [ns, st, code] of [['nope', 404, 'no_namespace'], ['a//b', 400, 'bad_batch'], ['x'.repeat(256), 400, 'bad_batch'], [7, 400, 'bad_batch']]) {
      r = await req(NP(), 'POST', '/v1/batch', { body: JSON.stringify([
        { op: 'put', key: 'x3', value: 'v' }, { op: 'delete', ns: 'a', key: 'x1' }, { op: 'put', ns, key: 'x3', value: 'v' }]) });
      eq(r.status, st, `ns ${String(ns).slice(0, 8)}`); eq(r.json.code, code, 'code');
      check(/operation 2/.test(r.json.error), 'names the operation');
    }
    eq((await req(NP(), 'GET', '/v1/keys/x3')).status, 404, 'nothing written');
    eq((await req(NP(), 'GET', '/v1/keys/x1?ns=a')).text, 'a-x1', 'nothing deleted');
    r = await req(NP(), 'POST', '/v1/batch', { body: JSON.stringify([
      { op: 'delete', key: 'x1' }, { op: 'delete', ns: 'a', key: 'x1' }, { op: 'delete', ns: 'a/b', key: 'x1' },
      { op: 'delete', ns: 'b', key: 'x1' }, { op: 'delete', ns: 'b', key: 'x2' }]) });
    eq(r.status, 200, 'cleanup batch');
    eq((await req(NP(), 'GET', '/v1/keys/x1?ns=a%2Fb')).status, 404, 'deleted across namespaces');
  });

  t('namespaces: a missing one is 404 no_namespace on every route, and nothing is created', async () => {
    for (const [m, p, body] of [['GET', '/v1/keys/k'], ['HEAD', '/v1/keys/k'], ['PUT', '/v1/keys/k', 'v'],
                                ['DELETE', '/v1/keys/k'], ['GET', '/v1/keys'], ['POST', '/v1/batch', '[{"op":"put","key":"k","value":"v"}]'],
                                ['POST', '/v1/mget', '["k"]'], ['GET', '/v1/stats'], ['GET', '/get/k'], ['POST', '/set/k/v']]) {
      for (const ns of ['nope', 'a%2Fnope']) {
        const r = await req(NP(), m, `${p}?ns=${ns}`, { body });
        eq(r.status, 404, `${m} ${p} ns=${ns}`);
        if (m !== 'HEAD') eq(r.json.code, 'no_namespace', `code of ${m} ${p}`);
      }
    }
    eq(names(await req(NP(), 'GET', '/v1/namespaces')), ['default', 'a', 'b'], 'no namespace created');
    eq(names(await req(NP(), 'GET', '/v1/namespaces?parent=a')), ['a/b'], 'none under a either');
    eq((await req(NP(), 'GET', '/v1/keys/k')).status, 404, 'default untouched (k deleted earlier)');
  });

  t('namespaces: names of 255 bytes work, 256 and malformed ones are 400', async () => {
    const n255 = 'n'.repeat(255), n256 = 'n'.repeat(256);
    let r = await req(NP(), 'PUT', `/v1/namespaces/${n255}`);
    eq(r.status, 201, '255 bytes created');
    eq((await req(NP(), 'PUT', `/v1/keys/k?ns=${n255}`, { body: 'long' })).status, 201, 'PUT in it');
    eq((await req(NP(), 'GET', `/v1/keys/k?ns=${n255}`)).text, 'long', 'GET in it');
    const nested = 'a/' + 'm'.repeat(253);
    eq((await req(NP(), 'PUT', `/v1/namespaces/${encodeURIComponent(nested)}`)).status, 201, 'nested 255 bytes');
    for (const bad of [n256, 'a/' + 'm'.repeat(254), 'a%2F%2Fb', '%2Fa', 'a%2F', '%2F']) {
      r = await req(NP(), 'PUT', `/v1/namespaces/${bad}`);
      eq(r.status, 400, `PUT /v1/namespaces/${bad.slice(0, 12)}.. (${bad.length})`);
      eq(r.json.code, 'bad_namespace', 'code');
      for (const [m, p] of [['GET', '/v1/keys/k'], ['PUT', '/v1/keys/k'], ['GET', '/v1/keys'], ['GET', '/v1/stats'],
                            ['POST', '/v1/mget'], ['POST', '/v1/batch'], ['GET', '/get/k'], ['POST', '/set/k/v']]) {
        r = await req(NP(), m, `${p}?ns=${bad}`, { body: m === 'GET' ? undefined : '[]' });
        eq(r.status, 400, `${m} ${p} ns=${bad.slice(0, 12)}..`); eq(r.json.code, 'bad_namespace', 'code');
      }
      eq((await req(NP(), 'DELETE', `/v1/namespaces/${bad}`)).status, 400, 'DELETE a bad name');
    }
    eq((await req(NP(), 'GET', '/v1/keys/k?ns=%zz')).json.code, 'bad_encoding', 'malformed escape in ns');
    eq((await req(NP(), 'DELETE', `/v1/namespaces/${n255}`)).status, 200, 'dropped');
  });

  t('namespaces: drop is recursive, a dropped one is 404, created again it is empty', async () => {
    let r = await req(NP(), 'DELETE', '/v1/namespaces/a');
    eq(r.status, 200, 'drop a'); eq(r.json, { ok: true }, 'body');
    eq(names(await req(NP(), 'GET', '/v1/namespaces')), ['default', 'b'], 'a gone from the list');
    for (const ns of ['a', 'a%2Fb', 'a%2F' + 'm'.repeat(253)]) {
      r = await req(NP(), 'GET', `/v1/keys/k?ns=${ns}`);
      eq(r.status, 404, `GET in dropped ${ns.slice(0, 8)}`); eq(r.json.code, 'no_namespace', 'code');
      eq((await req(NP(), 'PUT', `/v1/keys/k?ns=${ns}`, { body: 'x' })).json.code, 'no_namespace', 'PUT refused');
    }
    r = await req(NP(), 'DELETE', '/v1/namespaces/a');
    eq(r.status, 404, 'drop again'); eq(r.json.code, 'no_namespace', 'code');
    eq((await req(NP(), 'PUT', '/v1/namespaces/a')).status, 201, 'created again');
    eq((await req(NP(), 'GET', '/v1/keys/t?ns=a')).status, 404, 'empty: the old keys are gone');
    eq((await req(NP(), 'GET', '/v1/keys?ns=a')).json.keys, [], 'empty listing');
    eq((await req(NP(), 'PUT', '/v1/keys/t?ns=a', { body: 'new' })).status, 201, 'writes go to the new one');
    eq((await req(NP(), 'GET', '/v1/keys/t?ns=a')).text, 'new', 'read back');
    eq((await req(NP(), 'GET', '/v1/keys/k?ns=b')).text, 'in-b-ns', 'b untouched');
  });

  t('namespaces: requests race drops and creates; every answer is 200 or 404, none wrong', async () => {
    const seedR = L.rng(L.SEED);
    let stop = false, bad = 0, served = 0;
    const churn = (async () => {
      for (let i = 0; i < 40; i++) {
        await req(NP(), 'PUT', '/v1/namespaces/c');
        await req(NP(), 'PUT', '/v1/keys/v?ns=c', { body: 'c' + i });
        await req(NP(), 'DELETE', '/v1/namespaces/c');
      }
      stop = true;
    })();
    const readers = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const r = seedR() < 0.5 ? await req(NP(), 'GET', '/v1/keys/v?ns=c')
                                : await req(NP(), 'PUT', '/v1/keys/w?ns=c', { body: 'w' });
        served++;
        const okGet = r.status === 200 && /^c\d+$/.test(r.text);
        const okPut = r.status === 201 || r.status === 200;
        const gone = r.status === 404 || (r.status === 400 && r.json && r.json.code === 'invalid');
        if (!(okGet || okPut || gone)) { bad++; console.log(`    unexpected ${r.status} ${r.text}`); }
      }
    });
    await Promise.all([churn, ...readers]);
    eq(bad, 0, `unexpected answers of ${served}`);
    eq((await req(NP(), 'GET', '/v1/keys/v?ns=c')).json.code, 'no_namespace', 'c dropped at the end');
    eq((await req(NP(), 'GET', '/healthz')).status, 200, 'alive');
  });

  t('namespaces: 300 in use, past the 256 cached handles: each keeps its own keys', async () => {
    const N = 300, name = i => `many%2Fn${String(i).padStart(3, '0')}`;
    eq((await req(NP(), 'PUT', '/v1/namespaces/many')).status, 201, 'parent');
    for (let i = 0; i < N; i++) {
      eq((await req(NP(), 'PUT', `/v1/namespaces/${name(i)}`)).status, 201, `create ${i}`);
      eq((await req(NP(), 'PUT', `/v1/keys/k?ns=${name(i)}`, { body: `v${i}` })).status, 201, `put ${i}`);
    }
    for (let i = 0; i < N; i += 7) eq((await req(NP(), 'GET', `/v1/keys/k?ns=${name(i)}`)).text, `v${i}`, `read ${i}`);
    eq((await req(NP(), 'GET', '/v1/namespaces?parent=many')).json.namespaces.length, N, 'listed');
    eq((await req(NP(), 'DELETE', '/v1/namespaces/many')).status, 200, 'drop all 301 at once');
    eq((await req(NP(), 'GET', `/v1/keys/k?ns=${name(5)}`)).json.code, 'no_namespace', 'gone');
    eq(names(await req(NP(), 'GET', '/v1/namespaces')), ['default', 'a', 'b'], 'list back to before');
  });

  t('namespaces: read-only apid reads them, refuses create and drop; SIGTERM closes cleanly', async () => {
    const ro = await L.startServer(['--read-only'], { dir: NS.dir });
    try {
      eq((await req(ro.port, 'GET', '/v1/keys/k?ns=b')).text, 'in-b-ns', 'read in b');
      eq(names(await req(ro.port, 'GET', '/v1/namespaces')), ['default', 'a', 'b'], 'list');
      let r = await req(ro.port, 'PUT', '/v1/namespaces/z');
      eq(r.status, 403, 'create refused'); eq(r.json.code, 'read_only', 'code');
      eq((await req(ro.port, 'DELETE', '/v1/namespaces/b')).status, 403, 'drop refused');
      eq((await req(ro.port, 'PUT', '/v1/keys/k?ns=b', { body: 'x' })).status, 403, 'write refused');
      eq((await req(ro.port, 'GET', '/v1/namespaces/z')).status, 404, 'missing');
    } finally { eq((await L.stopServer(ro)).code, 0, 'reader exits 0 with handles cached'); }
    const st = await L.stopServer(NS);
    eq(st.code, 0, 'exit 0 with namespace handles cached'); check(/database closed/.test(NS.out()), 'closed');
    NS = await L.startServer([], { dir: NS.dir });
    eq((await req(NP(), 'GET', '/v1/keys/t?ns=a')).text, 'new', 'namespaces survive a restart');
    eq((await req(NP(), 'GET', '/v1/keys/k?ns=b')).text, 'in-b-ns', 'b too');
    await L.stopServer(NS);
  });

  t('metrics: Prometheus text with engine figures, requests, latency', async () => {
    const before = await req(P(), 'GET', '/metrics');
    const count = (txt, route, status) => {
      const m = new RegExp(`^apid_requests_total\\{route="${route}",status="${status}"\\} (\\d+)$`, 'm').exec(txt);
      return m ? Number(m[1]) : 0;
    };
    const n0 = count(before.text, 'healthz', 200);
    for (let i = 0; i < 5; i++) await req(P(), 'GET', '/healthz');
    await req(P(), 'GET', '/v1/keys/definitely-absent');
    const r = await req(P(), 'GET', '/metrics');
    eq(r.status, 200, 'status'); check(r.headers['content-type'].startsWith('text/plain; version=0.0.4'), 'content type');
    eq(count(r.text, 'healthz', 200), n0 + 5, 'healthz counted');
    check(count(r.text, 'key', 404) >= 1, 'key 404 counted');
    for (const m of ['calypso_keys', 'calypso_bytes', 'calypso_dead_bytes', 'calypso_merges_total', 'apid_uptime_seconds'])
      check(new RegExp(`^${m} [0-9.]+$`, 'm').test(r.text), `metric ${m}`);
    const inf = /apid_request_duration_seconds_bucket\{le="\+Inf"\} (\d+)/.exec(r.text);
    const cnt = /apid_request_duration_seconds_count (\d+)/.exec(r.text);
    check(inf && cnt && inf[1] === cnt[1] && Number(cnt[1]) > 10, 'histogram totals');
    for (const line of r.text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      check(/^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$/.test(line), `exposition line: ${line}`);
    }
  });

  t('the token: 401 without it, with a wrong one; the right one passes', async () => {
    const srv = await L.startServer(['--token', 's3cret-T0ken']);
    try {
      const auth = { Authorization: 'Bearer s3cret-T0ken' };
      for (const [m, p] of [['GET', '/v1/keys/x'], ['PUT', '/v1/keys/x'], ['GET', '/v1/keys'], ['GET', '/get/x'],
                            ['POST', '/set/x/y'], ['GET', '/metrics'], ['GET', '/v1/stats'], ['POST', '/v1/batch'],
                            ['POST', '/v1/merge'], ['GET', '/v1/namespaces'], ['PUT', '/v1/namespaces/a'],
                            ['DELETE', '/v1/namespaces/a'], ['GET', '/v1/keys/x?ns=a']]) {
        let r = await req(srv.port, m, p);
        eq(r.status, 401, `${m} ${p} without`); eq(r.json.code, 'unauthorized', 'code');
        r = await req(srv.port, m, p, { headers: { Authorization: 'Bearer s3cret-T0kem' } });
        eq(r.status, 401, `${m} ${p} wrong`);
        r = await req(srv.port, m, p, { headers: { Authorization: 'Basic s3cret-T0ken' } });
        eq(r.status, 401, `${m} ${p} not bearer`);
      }
      let r = await req(srv.port, 'PUT', '/v1/keys/x', { headers: auth, body: 'v' });
      eq(r.status, 201, 'with token');
      r = await req(srv.port, 'GET', '/get/x', { headers: auth });
      eq(r.text, 'v', 'get with token');
      r = await req(srv.port, 'GET', '/healthz');
      eq(r.status, 200, 'healthz needs no token');
      r = await req(srv.port, 'GET', '/browse');
      eq(r.status, 401, 'dashboard asks'); check(/id="login"/.test(r.text), 'login form');
      r = await req(srv.port, 'GET', '/browse', { headers: { Cookie: 'apid_token=wrong' } });
      eq(r.status, 401, 'wrong cookie');
      r = await req(srv.port, 'GET', '/browse', { headers: { Cookie: 'apid_token=s3cret-T0ken' } });
      eq(r.status, 200, 'cookie passes');
    } finally { await L.stopServer(srv); }
  });

  t('dashboard forms: CSRF refused, POST only, nothing changes on GET', async () => {
    const page = await req(P(), 'GET', '/browse');
    eq(page.status, 200, 'page');
    const cookie = /apid_csrf=([0-9a-f]{32})/.exec(page.headers['set-cookie'].join(';'))[1];
    check(page.text.includes(`name="csrf" value="${cookie}"`), 'token in the form');
    check(/default-src 'none'/.test(page.headers['content-security-policy']), 'CSP');
    const form = (extra) => `key=csrf-k&kenc=text&value=v&enc=text${extra}`;
    const hdr = { 'Content-Type': 'application/x-www-form-urlencoded' };
    let r = await req(P(), 'POST', '/browse/put', { headers: hdr, body: form('') });
    eq(r.status, 403, 'no token');
    r = await req(P(), 'POST', '/browse/put', { headers: { ...hdr, Cookie: `apid_csrf=${cookie}` }, body: form('&csrf=' + '0'.repeat(32)) });
    eq(r.status, 403, 'wrong token');
    r = await req(P(), 'POST', '/browse/put', { headers: { ...hdr }, body: form('&csrf=' + cookie) });
    eq(r.status, 403, 'field without cookie');
    r = await req(P(), 'POST', '/browse/put', { headers: { ...hdr, Cookie: `apid_csrf=${cookie}`, 'Sec-Fetch-Site': 'cross-site' }, body: form('&csrf=' + cookie) });
    eq(r.status, 403, 'cross-site');
    eq((await req(P(), 'GET', '/v1/keys/csrf-k')).status, 404, 'nothing written');
    r = await req(P(), 'GET', '/browse/put?key=csrf-k&value=v&csrf=' + cookie);
    eq(r.status, 405, 'GET refused');
    r = await req(P(), 'POST', '/browse/put', { headers: { ...hdr, Cookie: `apid_csrf=${cookie}` }, body: form('&csrf=' + cookie) });
    eq(r.status, 303, 'with the token'); check(r.headers.location.startsWith('/browse/key?k=637372662d6b'), 'to the key page');
    eq((await req(P(), 'GET', '/v1/keys/csrf-k')).text, 'v', 'written');
    r = await req(P(), 'POST', '/browse/delete', { headers: { ...hdr, Cookie: `apid_csrf=${cookie}` }, body: `k=637372662d6b&csrf=${cookie}` });
    eq(r.status, 200, 'delete asks first'); check(/id="confirm-delete"/.test(r.text), 'confirmation form');
    eq((await req(P(), 'GET', '/v1/keys/csrf-k')).status, 200, 'not deleted before confirming');
    r = await req(P(), 'POST', '/browse/delete', { headers: { ...hdr, Cookie: `apid_csrf=${cookie}` }, body: `k=637372662d6b&confirm=1&csrf=${cookie}` });
    eq(r.status, 303, 'confirmed');
    eq((await req(P(), 'GET', '/v1/keys/csrf-k')).status, 404, 'deleted');
    r = await req(P(), 'POST', '/browse/put', { headers: { ...hdr, Cookie: `apid_csrf=${cookie}` }, body: `key=x&value=zz&enc=hex&csrf=${cookie}` });
    eq(r.status, 400, 'bad hex value');
    r = await req(P(), 'GET', '/browse/key?k=zz');
    eq(r.status, 400, 'bad hex key');
    r = await req(P(), 'GET', '/browse/key?k=6e6f');
    eq(r.status, 404, 'absent key page');
  });

  t('dashboard: 10,050 keys paged through forward to the end and back', async () => {
    const srv = await L.startServer();
    try {
      const n = 10050, pad = i => `p:${String(i).padStart(5, '0')}`;
      for (let b = 0; b < n; b += 5000) {
        const ops = [];
        for (let i = b; i < Math.min(n, b + 5000); i++) ops.push({ op: 'put', key: pad(i), value: `v${i}` });
        eq((await req(srv.port, 'POST', '/v1/batch', { body: JSON.stringify(ops) })).status, 200, 'seed');
      }
      await req(srv.port, 'PUT', '/v1/keys/q:outside', { body: 'x' });
      const keysOf = html => [...html.matchAll(/href="\/browse\/key\?k=([0-9a-f]+)"/g)].map(m => Buffer.from(m[1], 'hex').toString());
      const link = (html, id) => { const m = new RegExp(`id="${id}" class="btn" href="([^"]+)"`).exec(html); return m ? m[1].replace(/&amp;/g, '&') : null; };
      let url = '/browse?prefix=p%3A', seen = [], pages = 0, html;
      for (;;) {
        html = (await req(srv.port, 'GET', url)).text;
        seen.push(...keysOf(html)); pages++;
        const next = link(html, 'next');
        if (!next) break;
        url = next;
      }
      eq(pages, Math.ceil(n / 50), 'pages'); eq(seen.length, n, 'keys');
      for (let i = 0; i < n; i++) if (seen[i] !== pad(i)) throw new Error(`forward: key ${i} is ${seen[i]}`);
      const back = [];
      for (let k = 0; k < 5; k++) {
        url = link(html, 'prev');
        check(url, `a previous page at step ${k}`);
        html = (await req(srv.port, 'GET', url)).text;
        back.unshift(...keysOf(html));
      }
      eq(back, seen.slice(n - (n % 50 || 50) - 250, n - (n % 50 || 50)), 'back five pages');
    } finally { await L.stopServer(srv); }
  });

  t('500 carries calypso\'s errmsg: a value damaged on disk under a running apid', async () => {
    const srv = await L.startServer();
    try {
      const marker = 'damage-me-' + L.SEED;
      await req(srv.port, 'PUT', '/v1/keys/victim', { body: marker });
      await req(srv.port, 'PUT', '/v1/keys/bystander', { body: 'fine' });
      const file = fs.readdirSync(srv.dir).filter(f => f.endsWith('.data')).map(f => `${srv.dir}/${f}`)
        .find(f => fs.readFileSync(f).includes(marker));
      check(file, 'the datafile holding the value');
      const off = fs.readFileSync(file).indexOf(marker);
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, Buffer.from('X'), 0, 1, off);        // flip one byte in place
      fs.closeSync(fd);
      for (const p of ['/v1/keys/victim', '/get/victim']) {
        const r = await req(srv.port, 'GET', p);
        eq(r.status, 500, `status of ${p}`); eq(r.json.code, 'checksum', 'code');
        check(r.json.error.includes(file) && /offset \d+/.test(r.json.error), `errmsg names file and offset: ${r.json.error}`);
      }
      eq((await req(srv.port, 'GET', '/v1/keys/bystander')).text, 'fine', 'other keys still served');
    } finally { await L.stopServer(srv); }
  });

  t('SIGTERM closes the database; the data is there on reopen', async () => {
    await req(P(), 'PUT', '/v1/keys/durable', { body: 'still here' });
    const st = await L.stopServer(S);
    eq(st.code, 0, 'exit code'); check(/database closed/.test(S.out()), 'says closed');
    S = await L.startServer(['--max-value-size', String(MAXV), '--max-key-size', String(MAXK)], { dir: S.dir });
    ctx.shared = S;
    eq((await req(P(), 'GET', '/v1/keys/durable')).text, 'still here', 'reopened');
  });

  t('read-only: reads work, writes are 403; readers run beside a writer, two writers never', async () => {
    const dir = S.dir;
    let err;
    const side = await L.startServer(['--read-only'], { dir });
    try {
      eq((await req(side.port, 'GET', '/v1/keys/durable')).text, 'still here', 'a reader beside the writer');
    } finally { await L.stopServer(side); }
    await L.stopServer(S);
    const ro = await L.startServer(['--read-only'], { dir });
    try {
      eq((await req(ro.port, 'GET', '/v1/keys/durable')).text, 'still here', 'read');
      let r = await req(ro.port, 'PUT', '/v1/keys/durable', { body: 'x' });
      eq(r.status, 403, 'PUT'); eq(r.json.code, 'read_only', 'code');
      eq((await req(ro.port, 'POST', '/set/a/b')).status, 403, '/set');
      eq((await req(ro.port, 'DELETE', '/v1/keys/durable')).status, 403, 'DELETE');
      eq((await req(ro.port, 'POST', '/v1/merge')).status, 403, 'merge');
      eq((await req(ro.port, 'POST', '/v1/batch', { body: '[{"op":"delete","key":"durable"}]' })).status, 403, 'batch');
      eq((await req(ro.port, 'GET', '/v1/stats')).json.read_only, true, 'stats says so');
      r = await req(ro.port, 'GET', '/browse');
      check(/read-only/.test(r.text) && !/id="merge"/.test(r.text), 'dashboard without write forms');
      const ro2 = await L.startServer(['--read-only'], { dir });
      eq((await req(ro2.port, 'GET', '/v1/keys/durable')).text, 'still here', 'two readers');
      await L.stopServer(ro2);
      const w = await L.startServer([], { dir });
      try {
        eq((await req(w.port, 'GET', '/v1/keys/durable')).text, 'still here', 'a writer beside a reader');
        try { await L.startServer([], { dir }); err = null; } catch (e) { err = e; }
        check(err && /lock/i.test(err.out), 'a second writer is refused');
      } finally { await L.stopServer(w); }
    } finally { await L.stopServer(ro); }
    S = await L.startServer(['--max-value-size', String(MAXV), '--max-key-size', String(MAXK)], { dir });
    ctx.shared = S;
  });

  t('a flood of 10,000 connections, 500 at a time, each answered', async () => {
    await req(P(), 'POST', '/set/flood/ok');
    const total = 10000, conc = 500;
    let okCount = 0, bad = 0, next = 0;
    const one = () => new Promise(resolve => {
      const s = net.connect(P(), '127.0.0.1');
      let got = '';
      s.on('connect', () => s.write('GET /get/flood HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      s.on('data', d => { got += d; });
      s.on('close', () => { if (/^HTTP\/1\.1 200/.test(got) && got.endsWith('\r\n\r\nok')) okCount++; else bad++; resolve(); });
      s.on('error', () => {});
    });
    const workers = Array.from({ length: conc }, async () => { while (next < total) { next++; await one(); } });
    await Promise.all(workers);
    eq(okCount + bad, total, 'all finished'); eq(bad, 0, 'failed connections'); 
    // And 2,000 connections held open at once, idle: apid keeps serving.
    const idle = await Promise.all(Array.from({ length: 2000 }, () => new Promise(res => {
      const s = net.connect(P(), '127.0.0.1'); s.on('connect', () => res(s)); s.on('error', () => res(s));
    })));
    const r = await req(P(), 'GET', '/get/flood', { agent: false });
    eq(r.text, 'ok', 'served beside 2000 idle connections');
    idle.forEach(s => s.destroy());
    eq((await req(P(), 'GET', '/healthz')).status, 200, 'alive');
  });

  t('stop the shared server', async () => {
    const st = await L.stopServer(S);
    eq(st.code, 0, 'exit');
  });
  return T;
}

module.exports = { tests };
