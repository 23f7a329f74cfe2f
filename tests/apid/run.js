// run.js: apid's test suite (make test-apid): the HTTP tests, then the
// dashboard in headless chromium. Prints one line per test, the seed
// (replay with CALYPSO_SEED) and a closing "N passed, N failed".
'use strict';
const L = require('./lib');

(async () => {
  console.log(`apid tests: seed ${L.SEED} (CALYPSO_SEED=${L.SEED} replays), binary ${L.BIN}`);
  const only = process.env.APID_TESTS || 'http,browse';
  let passed = 0, failed = 0;
  const ctx = {};
  if (only.includes('http')) {
    const r = await L.runTests('http', require('./http.test').tests(ctx));
    passed += r.passed; failed += r.failed;
  }
  if (only.includes('browse')) {
    const r = await L.runTests('browse', require('./browse.test').tests(ctx));
    passed += r.passed; failed += r.failed;
  }
  L.stopAll();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})().catch(e => { console.error(e); L.stopAll(); console.log('0 passed, 1 failed'); process.exit(1); });
