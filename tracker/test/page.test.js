'use strict';
// Configuration, sessions, the events a page produces, storage without
// localStorage, and the host page's safety.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Browser, START, SECOND, MINUTE, HOUR, DEFAULT_DATASET } = require('../testkit/fakewindow');

const sentTypes = (net) => net.sentEvents().map((e) => e.type);

// flushAll sends what the page has queued and lets it arrive.
async function flushAll(b, p) {
  p.api.flush();
  await b.clock.advance(0);
}

test('configuration comes from the script tag; without data-site or data-api the script does nothing', async () => {
  for (const dataset of [{ api: DEFAULT_DATASET.api }, { site: 'demo' }, {}]) {
    const b = new Browser();
    const p = b.open({ dataset });
    await b.clock.advance(HOUR);
    assert.equal(p.api, undefined);
    assert.equal(p.window.count() + p.document.count(), 0, 'no listeners');
    assert.equal(b.net.log.length, 0);
    assert.equal(b.local.size, 0, 'nothing stored');
  }
  const b = new Browser();
  const p = b.open({ dataset: { site: 'a1b2c3', api: 'https://in.example/sync' } });
  await flushAll(b, p);
  assert.equal(b.net.log[0].url, 'https://in.example/sync');
  assert.equal(b.net.log[0].body.site, 'a1b2c3');
});

test('the only global is window.opsmantik, with track and flush', () => {
  const b = new Browser();
  const p = b.open();
  assert.deepEqual(
    Object.keys(p.window).filter((k) => !p.globalsBefore.includes(k)),
    ['opsmantik']
  );
  assert.deepEqual(Object.keys(p.api).sort(), ['flush', 'track']);
});

test('a second copy of the script on the page does nothing', async () => {
  const one = new Browser();
  const p1 = one.open();
  const two = new Browser();
  const p2 = two.open({ copies: 2 });
  assert.equal(p2.window.count() + p2.document.count(), p1.window.count() + p1.document.count(), 'no second set of listeners');
  assert.deepEqual(
    p2.queue().map((e) => e.type),
    ['pageview']
  );
  p2.click({ href: 'tel:1' });
  await two.clock.advance(HOUR);
  assert.equal(two.net.sentEvents('phone_click').length, 1);
  assert.equal(two.net.sentEvents('pageview').length, 1);
});

test('one tab is one session across reloads; a new tab is a new session of the same visitor', async () => {
  const b = new Browser();
  let p = b.open();
  await flushAll(b, p);
  p = p.reload({ url: 'https://shop.example/products' });
  await flushAll(b, p);
  const other = b.open();
  await flushAll(b, other);
  const bodies = b.net.requests({ kind: 'fetch' }).map((r) => r.body);
  assert.equal(bodies.length, 3);
  assert.equal(bodies[0].sid, bodies[1].sid);
  assert.notEqual(bodies[2].sid, bodies[0].sid);
  assert.equal(new Set(bodies.map((x) => x.vid)).size, 1);
  assert.equal(bodies[1].ctx.url, 'https://shop.example/', 'the landing context stays the first page of the session');
});

test('a hidden tab shown after 30 minutes without interaction starts a new session, with a pageview', async () => {
  const b = new Browser();
  const p = b.open();
  await b.clock.advance(10 * SECOND);
  p.hide();
  await b.clock.advance(31 * MINUTE);
  p.show();
  await b.clock.advance(0);
  const req = b.net.requests({ kind: 'fetch' }).at(-1);
  const first = b.net.requests({ kind: 'beacon' })[0].body.sid;
  assert.notEqual(req.body.sid, first);
  assert.deepEqual(
    req.body.events.map((e) => [e.type, e.active_ms]),
    [
      ['pageview', undefined],
      ['heartbeat', 0],
    ]
  );
});

test('29 minutes hidden keep the session', async () => {
  const b = new Browser();
  const p = b.open();
  p.hide();
  await b.clock.advance(29 * MINUTE);
  p.show();
  await b.clock.advance(0);
  assert.equal(new Set(b.net.posts().map((r) => r.body.sid)).size, 1);
});

// sessionsOf lists, for each session in the order they appear, the events the
// server was sent for it (each once) as [type, minutes since START, state].
function sessionsOf(net) {
  const seen = new Set();
  const bySid = new Map();
  for (const r of net.posts()) {
    for (const e of r.body.events) {
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      if (!bySid.has(r.body.sid)) bySid.set(r.body.sid, { ctx: r.body.ctx, events: [] });
      bySid.get(r.body.sid).events.push([e.type, (e.ts - START) / MINUTE, e.state]);
    }
  }
  return [...bySid.entries()].map(([sid, v]) => ({ sid, ...v, events: v.events.sort((a, b) => a[1] - b[1]) }));
}

test('heartbeats keep no session alive: a visible idle tab starts a new session at its first interaction after 30 minutes', async () => {
  const b = new Browser();
  const p = b.open({ url: 'https://shop.example/?utm_source=news', referrer: 'https://news.example/' });
  await b.clock.advance(40 * MINUTE); // idle and visible: beats at 1, 2, 4, 9, 19, 29 and 39 minutes
  p.navigate('/later'); // SPA navigation changes the page, not the landing context
  p.scrollTo(1000); // 40 minutes after the last interaction (the load)
  await b.clock.advance(MINUTE);
  const [first, second, ...more] = sessionsOf(b.net);
  assert.equal(more.length, 0);
  assert.deepEqual(first.events, [
    ['pageview', 0, undefined],
    ['heartbeat', 1, 'active'],
    ['heartbeat', 2, 'idle'],
    ['heartbeat', 4, 'idle'],
    ['heartbeat', 9, 'idle'],
    ['heartbeat', 19, 'idle'],
    ['heartbeat', 29, 'idle'],
    ['heartbeat', 39, 'idle'], // past 30 minutes: still the old session, which it does not extend
    ['heartbeat', 40, 'idle'], // the page left by the navigation
  ]);
  assert.deepEqual(second.events, [
    ['pageview', 40, undefined],
    ['heartbeat', 41, 'active'],
  ]);
  assert.notEqual(second.sid, first.sid);
  assert.equal(second.ctx.url, 'https://shop.example/later', 'a fresh landing context');
  assert.equal(first.ctx.url, 'https://shop.example/?utm_source=news');
  const hb = b.net.sentEvents('heartbeat').at(-1);
  assert.equal(hb.active_ms, MINUTE, "the new session's engaged time starts at its interaction");
});

test('the session ends after exactly 30 minutes without interaction, not before', async () => {
  for (const [idle, sessions] of [
    [30 * MINUTE, 1],
    [30 * MINUTE + 1, 2],
  ]) {
    const b = new Browser();
    const p = b.open();
    await b.clock.advance(5 * MINUTE);
    p.key(); // the last interaction
    await b.clock.advance(idle);
    p.key();
    await b.clock.advance(MINUTE);
    assert.equal(new Set(b.net.posts().map((r) => r.body.sid)).size, sessions, `after ${idle} ms`);
  }
});

test('a visitor who keeps interacting keeps the session, for hours', async () => {
  const b = new Browser();
  const p = b.open();
  for (let i = 0; i < 12; i++) {
    await b.clock.advance(25 * MINUTE); // an idle tab in between, beating
    p.scrollTo(100 * i);
  }
  await b.clock.advance(MINUTE);
  assert.equal(b.net.storedEvents('heartbeat').length > 40, true);
  assert.equal(new Set(b.net.posts().map((r) => r.body.sid)).size, 1);
  assert.equal(b.net.storedEvents('pageview').length, 1);
});

test('events other than heartbeats keep the session too; after 30 minutes without any, they start a new one', async () => {
  const b = new Browser();
  const p = b.open();
  await b.clock.advance(20 * MINUTE);
  p.api.track('video_progress'); // the page reports what the visitor does
  await b.clock.advance(20 * MINUTE);
  p.key(); // 20 minutes after the custom event: the same session
  await b.clock.advance(35 * MINUTE);
  p.api.track('late'); // 35 minutes after the key: a new session, starting with a pageview
  p.api.flush();
  await b.clock.advance(0);
  const sessions = sessionsOf(b.net);
  assert.equal(sessions.length, 2);
  assert.deepEqual(
    sessions[1].events.filter(([type]) => type !== 'heartbeat'),
    [
      ['pageview', 75, undefined],
      ['custom', 75, undefined],
    ]
  );
  assert.deepEqual(
    sessions[0].events.filter(([type]) => type !== 'heartbeat').map(([type, min]) => [type, min]),
    [
      ['pageview', 0],
      ['custom', 20],
    ]
  );
});

test('a reload after 30 idle minutes starts a new session, though the tab kept beating', async () => {
  const b = new Browser();
  let p = b.open();
  await b.clock.advance(31 * MINUTE); // beats at 1, 2, 4, 9, 19 and 29 minutes
  p = p.reload();
  await b.clock.advance(MINUTE);
  const sessions = sessionsOf(b.net);
  assert.equal(sessions.length, 2);
  assert.deepEqual(sessions[1].events, [
    ['pageview', 31, undefined],
    ['heartbeat', 32, 'active'],
  ]);
  assert.deepEqual(sessions[0].events.at(-1), ['heartbeat', 31, 'hidden'], 'the closing page: the old session');
});

test('a new ad click id starts a new session; the same one does not', async () => {
  const b = new Browser();
  let p = b.open({ url: 'https://shop.example/?gclid=AAA' });
  await flushAll(b, p);
  p = p.reload({ url: 'https://shop.example/?gclid=AAA' });
  await flushAll(b, p);
  p = p.reload({ url: 'https://shop.example/other' });
  await flushAll(b, p);
  p = p.reload({ url: 'https://shop.example/?wbraid=BBB' });
  await flushAll(b, p);
  p.navigate('/?gbraid=CCC');
  await flushAll(b, p);
  // The session of each pageview, by the URL it was made on.
  const sid = {};
  for (const { event, sid: s, ctx } of b.net.stored.values()) {
    if (event.type === 'pageview') sid[new URL(event.url).search || new URL(event.url).pathname] = [s, ctx.gclid, ctx.wbraid, ctx.gbraid];
  }
  assert.deepEqual(Object.keys(sid), ['?gclid=AAA', '/other', '?wbraid=BBB', '?gbraid=CCC']);
  assert.equal(b.net.storedEvents('pageview').length, 5);
  assert.equal(sid['/other'][0], sid['?gclid=AAA'][0], 'a reload with the same click id, or without one, keeps the session');
  assert.deepEqual(sid['/other'].slice(1), ['AAA', null, null], 'and its landing context');
  assert.notEqual(sid['?wbraid=BBB'][0], sid['?gclid=AAA'][0]);
  assert.deepEqual(sid['?wbraid=BBB'].slice(1), [null, 'BBB', null]);
  assert.notEqual(sid['?gbraid=CCC'][0], sid['?wbraid=BBB'][0], 'also on SPA navigation');
  assert.deepEqual(sid['?gbraid=CCC'].slice(1), [null, null, 'CCC']);
});

test('conversion clicks: tel:, wa.me, api.whatsapp.com and whatsapp: links, also from inside the link', async () => {
  const b = new Browser();
  const p = b.open();
  p.click({ href: 'tel:+905551112233' });
  p.click({ href: 'tel:+90 555 111 22 34' }, { wrap: true });
  p.click({ href: 'https://wa.me/905551112233?text=Hi' });
  p.click({ href: 'https://api.whatsapp.com/send?phone=905551112233' }, { wrap: true });
  p.click({ href: 'whatsapp://send?phone=905551112233' });
  p.click({ href: '/contact' });
  p.click({ href: 'https://example.com/wa.me/' });
  p.click({}, { tag: 'button' });
  p.click({ name: 'no-href' });
  await b.clock.advance(0);
  const got = b.net.storedEvents().filter((e) => e.type !== 'pageview').map((e) => [e.type, e.target]);
  assert.deepEqual(got, [
    ['phone_click', '+905551112233'],
    ['phone_click', '+90 555 111 22 34'],
    ['whatsapp_click', 'https://wa.me/905551112233?text=Hi'],
    ['whatsapp_click', 'https://api.whatsapp.com/send?phone=905551112233'],
    ['whatsapp_click', 'whatsapp://send?phone=905551112233'],
  ]);
});

test('form submits name the form by id, else by name', async () => {
  const b = new Browser();
  const p = b.open();
  p.submit({ id: 'contact', name: 'ignored' });
  p.submit({ name: 'quote' });
  p.submit({});
  await b.clock.advance(0);
  assert.deepEqual(
    b.net.storedEvents('form_submit').map((e) => e.form),
    ['contact', 'quote', '']
  );
});

test('custom events: the name is cut to 64 characters, props keep at most 20 flat values', async () => {
  const b = new Browser();
  const p = b.open();
  const props = { s: 'x', n: 1.5, t: true, nan: NaN, inf: Infinity, o: {}, a: [1], f() {}, u: undefined, z: null };
  for (let i = 0; i < 25; i++) props[`k${i}`] = i;
  p.api.track('q'.repeat(80), props);
  p.api.track('');
  p.api.track();
  p.api.track('plain');
  await flushAll(b, p);
  const [long, plain] = b.net.storedEvents('custom');
  assert.equal(b.net.storedEvents('custom').length, 2);
  assert.equal(long.name, 'q'.repeat(64));
  const keys = Object.keys(long.props);
  assert.equal(keys.length, 20);
  assert.deepEqual(keys.slice(0, 4), ['s', 'n', 't', 'k0']);
  assert.deepEqual(plain.props, {});
});

test('SPA navigation: pushState, popstate and a new URL by replaceState are pageviews; the same URL or a new hash are not', async () => {
  const b = new Browser();
  const p = b.open({ url: 'https://shop.example/' });
  p.scrollTo(3200); // 100 % of the first page
  p.navigate('/products', { title: 'Products' });
  p.navigate('/products', { replace: true });
  p.navigate('/products#reviews');
  p.navigate('/products?sort=price', { replace: true });
  p.back('https://shop.example/');
  await flushAll(b, p);
  const events = b.net.storedEvents();
  assert.deepEqual(
    events.map((e) => [e.type, new URL(e.url).pathname + new URL(e.url).search, e.scroll]),
    [
      ['pageview', '/', undefined],
      ['heartbeat', '/', 100], // the page left: its depth travels with the next request
      ['pageview', '/products', undefined],
      ['heartbeat', '/products', 100],
      ['pageview', '/products?sort=price', undefined],
      ['heartbeat', '/products?sort=price', 100],
      ['pageview', '/', undefined],
    ]
  );
  assert.equal(events[2].title, 'Products');
  assert.equal(b.net.requests().length, 1, 'navigation sends nothing by itself');
});

test("the page's own history calls still work and return what they returned", () => {
  const b = new Browser();
  const p = b.open({
    hooks: {
      beforeScript(page) {
        page.window.history.pushState = function (s, t, u) {
          page.setUrl(u);
          return `pushed ${u} on ${this === page.window.history}`;
        };
      },
    },
  });
  assert.equal(p.window.history.pushState({}, '', '/x'), 'pushed /x on true');
  assert.equal(p.window.location.href, 'https://shop.example/x');
  assert.deepEqual(
    p.queue().map((e) => e.type),
    ['pageview', 'heartbeat', 'pageview']
  );
});

test('a page restored from the back-forward cache is a pageview, and one heartbeat', async () => {
  const b = new Browser();
  const p = b.open();
  await b.clock.advance(10 * SECOND);
  p.leaveToCache();
  await b.clock.advance(5 * MINUTE);
  p.restoreFromCache();
  await b.clock.advance(0);
  const sent = b.net.requests({ kind: 'fetch' });
  assert.equal(sent.length, 1);
  assert.deepEqual(
    sent[0].body.events.map((e) => [e.type, (e.ts - START) / SECOND]),
    [
      ['pageview', 0],
      ['pageview', 310],
      ['heartbeat', 310],
    ]
  );
});

test('without localStorage (blocked) the tracker works from memory', async () => {
  const b = new Browser({ storage: 'blocked' });
  b.random = () => 0;
  let n = 0;
  b.net.handler = () => (++n <= 2 ? 'error' : { status: 200 }); // unanswered: the breaker's count lives in memory
  const p = b.open();
  p.api.track('a');
  p.click({ href: 'tel:1' });
  await b.clock.advance(5 * SECOND);
  await b.clock.advance(MINUTE);
  assert.deepEqual(
    b.net.requests({ kind: 'fetch' }).map((r) => [r.body.failures, r.body.events.map((e) => e.type)]),
    [
      [0, ['pageview', 'custom', 'phone_click']],
      [1, ['pageview', 'custom', 'phone_click']],
      [2, ['pageview', 'custom', 'phone_click']],
      [0, ['heartbeat']],
    ]
  );
  assert.equal(new Set(b.net.posts().map((r) => r.body.vid)).size, 1);
});

test('with a full localStorage (writes throw) the tracker works from memory', async () => {
  const b = new Browser({ storage: 'full' });
  const p = b.open();
  p.submit({ id: 'contact' });
  await b.clock.advance(0);
  assert.deepEqual(sentTypes(b.net), ['pageview', 'form_submit']);
  assert.equal(b.local.size, 0);
});

test('nothing the tracker does throws into the page', async () => {
  const b = new Browser();
  const p = b.open({
    hooks: {
      beforeScript(page) {
        page.window.fetch = () => {
          throw new Error('fetch is broken on this page');
        };
        page.window.navigator.sendBeacon = () => {
          throw new Error('beacon is broken on this page');
        };
      },
    },
  });
  const cyclic = {};
  cyclic.self = cyclic;
  assert.doesNotThrow(() => {
    p.click({ href: 'tel:1' });
    p.api.track('x', cyclic);
    p.api.track({ toString: () => 'named' }, 42);
    p.api.track(Symbol('s'));
    p.api.flush();
    p.scrollTo(100);
    p.document.emit('click', { target: null });
    p.document.emit('submit', { target: {} });
    p.hide();
    p.show();
    p.navigate('/y');
    p.close();
  });
  await b.clock.advance(HOUR);
  assert.deepEqual(
    p.queue().filter((e) => e.type === 'custom').map((e) => [e.name, e.props]),
    [
      ['x', {}],
      ['named', {}],
      ['Symbol(s)', {}],
    ],
    'the page keeps working around the breakage'
  );
});

test('broken stored values are ignored', async () => {
  const b = new Browser();
  b.local.set('om_q', '{not json');
  b.local.set('om_b', '"text"');
  const tab = { session: new Map([['om_s', '[1,2]']]) };
  const p = b.open({ tab });
  p.click({ href: 'tel:1' });
  await b.clock.advance(0);
  assert.deepEqual(sentTypes(b.net), ['pageview', 'phone_click']);
  assert.deepEqual(p.queue(), [], 'delivered and removed');
  assert.deepEqual(p.storage('om_b'), { mode: 'primary', failures: 0, streak: 0 });
  assert.match(b.net.log[0].body.sid, /^[0-9a-f-]{36}$/);
});
