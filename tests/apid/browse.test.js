// browse.test.js: the /browse dashboard driven in headless chromium (Debian's
// /usr/bin/chromium through playwright-core): search, paging forward and
// back, insert, edit, delete with its confirmation, TTL set and clear, a
// binary value in hex, the <script> key shown as text, CSRF refusal, the
// token login, a phone-width layout, and no request leaving apid. Each
// page's screenshot is kept in $APID_ARTIFACTS.
'use strict';
const fs = require('fs');
const path = require('path');
const os = require('os');
const L = require('./lib');
const { req, pct, check, eq } = L;

const XSS = '<script>alert(1)</script>';

function tests(ctx) {
  const T = [];
  const t = (name, fn) => T.push([name, fn]);
  let S, browser, context, page, profile;
  const dialogs = [], outside = [];
  const base = () => `http://127.0.0.1:${S.port}`;
  const shot = name => page.screenshot({ path: path.join(L.ARTIFACTS, `${name}.png`), fullPage: true });
  const rowKeys = () => page.$$eval('#keys tbody td:first-child .k', els => els.map(e => e.textContent));
  const api = (m, p, body) => req(S.port, m, p, { body });

  t('start apid and chromium', async () => {
    S = await L.startServer();
    const ops = [];
    for (let i = 0; i < 120; i++) ops.push({ op: 'put', key: `item:${String(i).padStart(3, '0')}`, value: `value of item ${i}` });
    ops.push({ op: 'put', key: XSS, value: '<img src=x onerror=alert(2)>' });
    ops.push({ op: 'put', key: 'bin:blob', value_b64: Buffer.from([0, 1, 2, 0xff, 0x41]).toString('base64') });
    ops.push({ op: 'put', key: 'zz:session', value: 'token', ttl: '1h' });
    eq((await req(S.port, 'POST', '/v1/batch', { body: JSON.stringify(ops) })).status, 200, 'seed');
    const { chromium } = require('playwright-core');
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'apid-chromium-'));
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium', headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      // playwright gives chromium a fresh --user-data-dir of its own each launch
      // (it refuses the flag here); `profile` is chromium's TMPDIR.
      env: { ...process.env, TMPDIR: profile },
    });
    context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    // Everything the pages load must come from apid: no CDN, works offline.
    await context.route('**/*', route => {
      const u = new URL(route.request().url());
      if (u.hostname !== '127.0.0.1' || Number(u.port) !== S.port) { outside.push(u.href); return route.abort(); }
      return route.continue();
    });
    page = await context.newPage();
    page.on('dialog', d => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  });

  t('the list: keys escaped, the <script> key shown as text, stats and chart', async () => {
    await page.goto(`${base()}/browse`);
    const keys = await rowKeys();
    eq(keys.length, 50, 'a page of 50');
    eq(keys[0], XSS, "'<' sorts first");
    eq(keys[1], 'bin:blob', 'then bin:blob');
    await page.goto(`${base()}/browse?prefix=${encodeURIComponent('<')}`);
    eq(await rowKeys(), [XSS], 'the XSS key, as text');
    const html = await page.content();
    check(!html.includes(XSS), 'never raw in the markup');
    check(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'escaped in the markup');
    eq(await page.$$eval('script', s => s.length), 1, 'only apid\'s own script element');
    await page.waitForTimeout(200);
    eq(dialogs, [], 'no alert ran');
    await page.goto(`${base()}/browse`);
    check(Number(await page.textContent('#st-keys')) === 123, 'stats panel keys');
    check(await page.$('#chart polyline'), 'chart drawn');
    await shot('browse-list');
    await page.goto(`${base()}/browse?prefix=item%3A1`);     // the README's picture
    await page.screenshot({ path: path.join(L.ARTIFACTS, 'browse-overview.png') });
  });

  t('search by prefix, then page forward and back', async () => {
    await page.goto(`${base()}/browse`);
    await page.fill('#prefix', 'item:');
    await Promise.all([page.waitForNavigation(), page.click('#search-btn')]);
    const want = i => `item:${String(i).padStart(3, '0')}`;
    eq(await rowKeys(), Array.from({ length: 50 }, (_, i) => want(i)), 'page 1');
    check(!(await page.$('#prev')), 'no previous on page 1');
    await Promise.all([page.waitForNavigation(), page.click('#next')]);
    eq(await rowKeys(), Array.from({ length: 50 }, (_, i) => want(50 + i)), 'page 2');
    await Promise.all([page.waitForNavigation(), page.click('#next')]);
    eq(await rowKeys(), Array.from({ length: 20 }, (_, i) => want(100 + i)), 'page 3');
    check(!(await page.$('#next')), 'no next on the last page');
    await shot('browse-page3');
    await Promise.all([page.waitForNavigation(), page.click('#prev')]);
    eq(await rowKeys(), Array.from({ length: 50 }, (_, i) => want(50 + i)), 'back to page 2');
    await Promise.all([page.waitForNavigation(), page.click('#prev')]);
    eq(await rowKeys(), Array.from({ length: 50 }, (_, i) => want(i)), 'back to page 1');
    check(!(await page.$('#prev')), 'no previous again');
    eq(await page.inputValue('#prefix'), 'item:', 'prefix kept');
  });

  t('insert a key, then edit its value', async () => {
    await page.goto(`${base()}/browse`);
    await page.fill('#new-key', 'pw:new');
    await page.fill('#new-value', 'hello <b>world</b>');
    await Promise.all([page.waitForNavigation(), page.click('#insert-btn')]);
    eq(await page.textContent('#flash'), 'Key created.', 'flash');
    eq(await page.textContent('#key'), 'pw:new', 'key page');
    eq(await page.textContent('#value'), 'hello <b>world</b>', 'value shown as text');
    eq((await api('GET', '/v1/keys/pw:new')).text, 'hello <b>world</b>', 'stored');
    await shot('browse-key');
    await page.fill('#edit-value', 'edited value');
    await Promise.all([page.waitForNavigation(), page.click('#save')]);
    eq(await page.textContent('#flash'), 'Saved.', 'saved');
    eq(await page.textContent('#value'), 'edited value', 'new value shown');
    eq((await api('GET', '/v1/keys/pw:new')).text, 'edited value', 'stored edit');
  });

  t('set a TTL, see it remaining, clear it', async () => {
    await page.goto(`${base()}/browse/key?k=${Buffer.from('pw:new').toString('hex')}`);
    eq(await page.textContent('#ttl-left'), 'no TTL', 'none yet');
    await page.fill('#ttl', '10m');
    await Promise.all([page.waitForNavigation(), page.click('#set-ttl')]);
    eq(await page.textContent('#flash'), 'TTL set.', 'flash');
    const left = /expires in (\d+) s/.exec(await page.textContent('#ttl-left'));
    check(left && Number(left[1]) > 590 && Number(left[1]) <= 600, 'remaining shown');
    let j = (await api('GET', '/v1/keys/pw:new?format=json')).json;
    check(j.ttl_ms > 590000 && j.ttl_ms <= 600000, 'TTL stored'); eq(j.value, 'edited value', 'value kept');
    await shot('browse-ttl');
    // An edit keeps the remaining TTL.
    await page.fill('#edit-value', 'edited twice');
    await Promise.all([page.waitForNavigation(), page.click('#save')]);
    j = (await api('GET', '/v1/keys/pw:new?format=json')).json;
    check(j.ttl_ms > 580000, 'edit kept the TTL');
    await Promise.all([page.waitForNavigation(), page.click('#clear-ttl')]);
    eq(await page.textContent('#flash'), 'TTL cleared.', 'cleared');
    eq(await page.textContent('#ttl-left'), 'no TTL', 'none again');
    j = (await api('GET', '/v1/keys/pw:new?format=json')).json;
    eq(j.ttl_ms, null, 'cleared in the database'); eq(j.value, 'edited twice', 'value kept');
    await page.fill('#ttl', 'soon');
    await Promise.all([page.waitForNavigation(), page.click('#set-ttl')]);
    eq(await page.textContent('#msg-title'), 'Not saved', 'bad TTL refused');
  });

  t('a binary value shows in hex, and edits in hex', async () => {
    await page.goto(`${base()}/browse?prefix=bin`);
    await Promise.all([page.waitForNavigation(), page.click('#keys tbody a')]);
    const dump = await page.textContent('#value');
    check(/^00000000  00 01 02 ff 41 /.test(dump), `hex dump: ${dump}`);
    check(dump.includes('|....A|'), 'ascii column');
    eq(await page.inputValue('#edit-enc'), 'hex', 'edit form in hex');
    eq(await page.inputValue('#edit-value'), '000102ff41', 'hex in the textarea');
    await shot('browse-hex');
    await page.fill('#edit-value', 'de ad be ef 00');
    await Promise.all([page.waitForNavigation(), page.click('#save')]);
    eq((await api('GET', '/v1/keys/bin:blob')).body, Buffer.from([0xde, 0xad, 0xbe, 0xef, 0]), 'stored bytes');
    await page.click('#view-text');
    await page.waitForLoadState();
    check((await page.textContent('#value')).startsWith('00000000  de ad be ef 00'), 'non-UTF-8 stays hex');
  });

  t('delete asks for confirmation: dismissed keeps the key, accepted deletes it', async () => {
    await page.goto(`${base()}/browse/key?k=${Buffer.from('pw:new').toString('hex')}`);
    dialogs.length = 0;
    await page.click('#delete-btn');                  // the handler dismisses
    await page.waitForTimeout(300);
    eq(dialogs, ['Delete this key?'], 'asked');
    eq((await api('GET', '/v1/keys/pw:new')).status, 200, 'still there');
    page.removeAllListeners('dialog');
    page.once('dialog', d => { dialogs.push(d.message()); d.accept(); });
    await Promise.all([page.waitForNavigation(), page.click('#delete-btn')]);
    eq(await page.textContent('#flash'), 'Key deleted.', 'flash');
    eq((await api('GET', '/v1/keys/pw:new')).status, 404, 'deleted');
    page.on('dialog', d => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
    // Without script the server asks on a page of its own.
    const ctx2 = await browser.newContext({ javaScriptEnabled: false });
    const p2 = await ctx2.newPage();
    await p2.goto(`${base()}/browse/key?k=${Buffer.from('item:000').toString('hex')}`);
    await Promise.all([p2.waitForNavigation(), p2.click('#delete-btn')]);
    eq(await p2.textContent('#msg-title'), 'Delete this key?', 'confirmation page');
    await p2.screenshot({ path: path.join(L.ARTIFACTS, 'browse-confirm.png') });
    eq((await api('GET', '/v1/keys/item:000')).status, 200, 'not yet');
    await Promise.all([p2.waitForNavigation(), p2.click('#confirm-delete')]);
    eq((await api('GET', '/v1/keys/item:000')).status, 404, 'deleted after confirming');
    await ctx2.close();
  });

  t('CSRF: a form with a forged token is refused, nothing changes', async () => {
    await page.goto(`${base()}/browse/key?k=${Buffer.from('item:001').toString('hex')}`);
    await page.$$eval('input[name=csrf]', els => els.forEach(e => { e.value = 'f'.repeat(32); }));
    await page.fill('#edit-value', 'forged');
    const [resp] = await Promise.all([page.waitForNavigation(), page.click('#save')]);
    eq(resp.status(), 403, 'status');
    eq(await page.textContent('#msg-title'), 'Refused', 'refusal page');
    await shot('browse-csrf');
    eq((await api('GET', '/v1/keys/item:001')).text, 'value of item 1', 'unchanged');
    // A page of another origin posting to apid: the cookie is SameSite=Strict and
    // the request is cross-site, so it is refused too.
    const evil = await context.newPage();
    await evil.route('http://evil.test/', r => r.fulfill({ contentType: 'text/html', body:
      `<form id=f method=post action="${base()}/browse/delete"><input name=k value="${Buffer.from('item:001').toString('hex')}">` +
      `<input name=confirm value=1><input name=csrf value="x"></form><script>document.getElementById('f').submit()</script>` }));
    const refused = async () => {
      const m = /^apid_requests_total\{route="browse_delete",status="403"\} (\d+)$/m.exec((await api('GET', '/metrics')).text);
      return m ? Number(m[1]) : 0;
    };
    const before = await refused();
    await evil.goto('http://evil.test/').catch(() => {});
    for (let i = 0; i < 50 && await refused() === before; i++) await evil.waitForTimeout(100);
    await evil.close();
    eq(await refused(), before + 1, 'the cross-site post reached apid and was refused');
    eq((await api('GET', '/v1/keys/item:001')).status, 200, 'nothing deleted');
    outside.length = 0;
  });

  t('merge from the dashboard', async () => {
    await page.goto(`${base()}/browse`);
    const m0 = Number(await page.textContent('#st-merges'));
    await Promise.all([page.waitForNavigation(), page.click('#merge')]);
    eq(await page.textContent('#flash'), 'Merge complete.', 'flash');
    eq(Number(await page.textContent('#st-merges')), m0 + 1, 'merges counted');
  });

  t('namespaces: the selector scopes the list, the key page and edits to one namespace', async () => {
    eq((await api('PUT', '/v1/namespaces/team')).status, 201, 'create team');
    eq((await api('PUT', '/v1/namespaces/team%2Fsub')).status, 201, 'create team/sub');
    eq((await api('PUT', '/v1/keys/item%3A001?ns=team', 'team value')).status, 201, 'item:001 in team');
    eq((await api('PUT', '/v1/keys/only%3Ateam?ns=team', 't')).status, 201, 'only:team');
    eq((await api('PUT', '/v1/keys/only%3Asub?ns=team%2Fsub', 's')).status, 201, 'only:sub');
    const before = (await api('GET', '/v1/keys/item%3A001')).text;
    await page.goto(`${base()}/browse`);
    eq(await page.$$eval('#ns option', os => os.map(o => o.textContent)), ['default', 'team', 'team/sub'], 'options');
    eq(await page.$eval('#ns', e => e.selectedOptions[0].textContent), 'default', 'default selected');
    check(!(await rowKeys()).includes('only:team'), 'default list lacks team\'s keys');
    // By keyboard: the select has a label, and Tab goes from it to its button.
    eq(await page.$eval('label[for="ns"]', e => e.textContent), 'namespace', 'labelled');
    await page.focus('#ns');
    await page.selectOption('#ns', { label: 'team' });
    await page.keyboard.press('Tab');
    eq(await page.evaluate(() => document.activeElement.id), 'ns-btn', 'Tab reaches the button');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    eq(await rowKeys(), ['item:001', 'only:team'], 'team\'s keys only');
    eq(await page.$eval('#ns', e => e.selectedOptions[0].textContent), 'team', 'team selected');
    eq(await page.textContent('#st-keys'), '2', 'stats of team');
    await shot('browse-namespace');
    // Search stays inside the namespace.
    await page.fill('#prefix', 'only');
    await Promise.all([page.waitForNavigation(), page.click('#search-btn')]);
    eq(await rowKeys(), ['only:team'], 'search in team');
    // The key page reads team's value; an edit writes team's key only.
    await page.goto(`${base()}/browse?nsx=${Buffer.from('team').toString('hex')}`);
    await Promise.all([page.waitForNavigation(), page.click('#keys a:has-text("item:001")')]);
    eq(await page.textContent('#value'), 'team value', 'team\'s value');
    await page.fill('#edit-value', 'team edited');
    await Promise.all([page.waitForNavigation(), page.click('#save')]);
    eq(await page.textContent('#flash'), 'Saved.', 'saved');
    eq(await page.textContent('#value'), 'team edited', 'shown');
    eq((await api('GET', '/v1/keys/item%3A001?ns=team')).text, 'team edited', 'written in team');
    eq((await api('GET', '/v1/keys/item%3A001')).text, before, 'default untouched');
    await Promise.all([page.waitForNavigation(), page.click('#all-keys')]);
    eq(await rowKeys(), ['item:001', 'only:team'], 'back to team\'s list');
    // Insert in team/sub.
    await page.selectOption('#ns', { label: 'team/sub' });
    await Promise.all([page.waitForNavigation(), page.click('#ns-btn')]);
    eq(await rowKeys(), ['only:sub'], 'team/sub\'s keys only');
    await page.fill('#new-key', 'ins:sub');
    await page.fill('#new-value', 'inserted');
    await Promise.all([page.waitForNavigation(), page.click('#insert-btn')]);
    eq(await page.textContent('#flash'), 'Key created.', 'created');
    eq((await api('GET', '/v1/keys/ins%3Asub?ns=team%2Fsub')).text, 'inserted', 'in team/sub');
    eq((await api('GET', '/v1/keys/ins%3Asub?ns=team')).status, 404, 'not in team');
    eq((await api('GET', '/v1/keys/ins%3Asub')).status, 404, 'not in default');
    // Back to default; a dropped namespace is a 404 page.
    await page.goto(`${base()}/browse`);
    await page.selectOption('#ns', { label: 'default' });
    await Promise.all([page.waitForNavigation(), page.click('#ns-btn')]);
    check(!(await rowKeys()).includes('only:team'), 'default again');
    eq((await api('DELETE', '/v1/namespaces/team')).status, 200, 'drop team');
    const r = await page.goto(`${base()}/browse?nsx=${Buffer.from('team').toString('hex')}`);
    eq(r.status(), 404, 'dropped: 404'); eq(await page.textContent('#msg-title'), 'No such namespace', 'says so');
    eq((await page.goto(`${base()}/browse?nsx=zz`)).status(), 400, 'bad hex: 400');
  });

  t('phone width: one column, nothing wider than the screen', async () => {
    const ph = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
    const p = await ph.newPage();
    for (const [url, name] of [['/browse', 'phone-list'], [`/browse/key?k=${Buffer.from('bin:blob').toString('hex')}`, 'phone-key'],
                               [`/browse/key?k=${Buffer.from(XSS).toString('hex')}`, 'phone-xss']]) {
      await p.goto(base() + url);
      const w = await p.evaluate(() => document.documentElement.scrollWidth);
      check(w <= 376, `${url}: page ${w}px wide on a 375px screen`);
      await p.screenshot({ path: path.join(L.ARTIFACTS, `${name}.png`), fullPage: true });
    }
    await ph.close();
  });

  t('the token: the dashboard asks once, then keeps it in a cookie', async () => {
    const srv = await L.startServer(['--token', 'dash-T0ken']);
    try {
      const c = await browser.newContext();
      const p = await c.newPage();
      const r0 = await p.goto(`http://127.0.0.1:${srv.port}/browse`);
      eq(r0.status(), 401, 'asks');
      await p.screenshot({ path: path.join(L.ARTIFACTS, 'browse-login.png') });
      await p.fill('#token', 'wrong');
      await Promise.all([p.waitForNavigation(), p.click('#login-btn')]);
      eq(await p.textContent('#login-error'), 'Wrong token.', 'wrong token');
      await p.fill('#token', 'dash-T0ken');
      await Promise.all([p.waitForNavigation(), p.click('#login-btn')]);
      check(await p.$('#keys'), 'the list after signing in');
      const r1 = await p.goto(`http://127.0.0.1:${srv.port}/browse`);
      eq(r1.status(), 200, 'kept in the cookie');
      const cookies = await c.cookies();
      const tc = cookies.find(k => k.name === 'apid_token');
      check(tc && tc.httpOnly && tc.sameSite === 'Strict', 'HttpOnly, SameSite=Strict');
      await c.close();
    } finally { await L.stopServer(srv); }
  });

  t('nothing was loaded from outside apid; close', async () => {
    eq(outside, [], 'requests outside apid');
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
    eq((await L.stopServer(S)).code, 0, 'apid exit');
  });
  return T;
}

module.exports = { tests };
