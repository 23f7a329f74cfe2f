// lib.js: what apid's tests share: starting and stopping apid on a free
// loopback port (the server picks it, --bind 127.0.0.1:0, and writes it to
// --port-file), HTTP requests (node's http client, or raw bytes on a socket
// for what a client library will not send), a seeded PRNG, and a tiny test
// runner that prints one line per test and closes with "N passed, N failed".
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');

const BIN = path.resolve(process.env.APID_BIN || 'build/apid');
const ARTIFACTS = path.resolve(process.env.APID_ARTIFACTS || 'build/apid-test');
fs.mkdirSync(ARTIFACTS, { recursive: true });

// >> the seed: CALYPSO_SEED replays a run
const SEED = process.env.CALYPSO_SEED ? Number(process.env.CALYPSO_SEED) >>> 0
                                      : (Date.now() ^ process.pid) >>> 0;
function rng(seed) {               // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// >> servers
const servers = new Set();
let dirCount = 0;
function tmpdir(tag) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `apid-${tag}-`));
  return d;
}

// Starts apid; resolves to { port, pid, proc, dir, out() } once it listens.
async function startServer(args = [], opts = {}) {
  const dir = opts.dir || path.join(tmpdir('db'), `db${dirCount++}`);
  const portFile = path.join(os.tmpdir(), `apid-port-${process.pid}-${dirCount++}`);
  try { fs.unlinkSync(portFile); } catch (e) { /* absent */ }
  const proc = spawn(BIN, ['--dbpath', dir, '--bind', '127.0.0.1:0', '--port-file', portFile, ...args],
                     { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', d => { out += d; });
  proc.stderr.on('data', d => { out += d; });
  const exited = new Promise(res => proc.on('exit', (code, sig) => res({ code, sig })));
  const srv = { proc, pid: proc.pid, dir, exited, out: () => out };
  servers.add(srv);
  const t0 = Date.now();
  while (!fs.existsSync(portFile)) {
    if (proc.exitCode !== null || proc.signalCode) {
      servers.delete(srv);
      const e = new Error(`apid exited at start: ${out}`);
      e.exit = await exited; e.out = out;
      throw e;
    }
    if (Date.now() - t0 > 10000) throw new Error(`apid did not start: ${out}`);
    await sleep(10);
  }
  srv.port = Number(fs.readFileSync(portFile, 'utf8'));
  fs.unlinkSync(portFile);
  return srv;
}

// SIGTERM to the server's pid; resolves to its exit status.
async function stopServer(srv) {
  if (!servers.has(srv)) return srv.exited;
  servers.delete(srv);
  process.kill(srv.pid, 'SIGTERM');
  const timer = setTimeout(() => { try { process.kill(srv.pid, 'SIGKILL'); } catch (e) { /* gone */ } }, 10000);
  const st = await srv.exited;
  clearTimeout(timer);
  return st;
}

function stopAll() {
  for (const s of servers) { try { process.kill(s.pid, 'SIGKILL'); } catch (e) { /* gone */ } }
  servers.clear();
}
process.on('exit', stopAll);

// >> HTTP
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

// One request; path is sent as given (already percent-encoded).
function req(port, method, p, { headers = {}, body, agent: ag } = {}) {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: ag || agent }, res => {
      const chunks = [];
      res.on('data', c => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        let json;
        if ((res.headers['content-type'] || '').startsWith('application/json')) {
          try { json = JSON.parse(buf.toString('utf8')); } catch (e) { json = undefined; }
        }
        resolve({ status: res.statusCode, headers: res.headers, body: buf, text: buf.toString('utf8'), json });
      });
      res.on('error', reject);
    });
    r.on('error', reject);
    if (body !== undefined) r.write(body);
    r.end();
  });
}

// Raw bytes on a fresh socket; resolves to what came back before the server
// closed the socket or `ms` passed.
function raw(port, data, ms = 2000) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks = [];
    let done = false;
    const finish = () => { if (done) return; done = true; s.destroy(); resolve(Buffer.concat(chunks)); };
    s.on('connect', () => s.write(data));
    s.on('data', c => chunks.push(c));
    s.on('end', finish);
    s.on('close', finish);
    s.on('error', e => { if (chunks.length) finish(); else if (!done) { done = true; reject(e); } });
    setTimeout(finish, ms);
  });
}

function statusOf(rawReply) {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(rawReply.toString('latin1'));
  return m ? Number(m[1]) : 0;
}

// Percent-encodes every byte of a Buffer or string (the strictest form).
function pct(b) {
  return [...Buffer.from(b)].map(c => '%' + c.toString(16).padStart(2, '0').toUpperCase()).join('');
}

function sleep(ms) { return new Promise(r => setTimeout(r, ms)); }

// >> the runner
class AssertionError extends Error {}
function check(cond, msg) { if (!cond) throw new AssertionError(msg); }
function eq(a, b, msg) {
  const sa = Buffer.isBuffer(a) ? a.toString('hex') : JSON.stringify(a);
  const sb = Buffer.isBuffer(b) ? b.toString('hex') : JSON.stringify(b);
  if (sa !== sb) throw new AssertionError(`${msg}: got ${sa}, want ${sb}`);
}

async function runTests(suite, tests) {
  let passed = 0, failed = 0;
  for (const [name, fn] of tests) {
    const t0 = Date.now();
    try {
      await fn();
      passed++;
      console.log(`[ OK ] ${suite}: ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`[FAIL] ${suite}: ${name}: ${e && e.stack ? e.stack : e}`);
    }
  }
  return { passed, failed };
}

module.exports = { BIN, ARTIFACTS, SEED, rng, startServer, stopServer, stopAll, req, raw, statusOf,
                   pct, sleep, check, eq, runTests, tmpdir };
