'use strict';
// Batching, the queue, and what the tracker does with each response
// (PROTOCOL.md "Transport", "Responses").

const test = require('node:test');
const assert = require('node:assert/strict');
const { Browser, START, SECOND, MINUTE } = require('../testkit/fakewindow');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const secs = (r) => (r.at - START) / SECOND;
const postsOf = (net) => net.requests({ kind: 'fetch', method: 'POST' });

test('events ride with the next heartbeat; a conversion is sent at once, with them', async () => {
  const b = new Browser();
  const p = b.open();
  await b.clock.advance(5 * SECOND);
  p.api.track('quote_opened', { plan: 'pro' });
  await b.clock.advance(10 * SECOND);
  assert.equal(b.net.log.length, 0, 'a pageview and a custom event wait');
  p.click({ href: 'tel:+905551112233' });
  await b.clock.advance(0);
  const posts = postsOf(b.net);
  assert.equal(posts.length, 1);
  assert.equal(secs(posts[0]), 15);
  assert.deepEqual(
    posts[0].body.events.map((e) => e.type),
    ['pageview', 'custom', 'phone_click']
  );
  assert.deepEqual(p.queue(), [], 'a 200 empties the queue');
  await b.clock.advance(45 * SECOND);
  assert.deepEqual(
    postsOf(b.net).map((r) => [secs(r), r.body.events.map((e) => e.type)]),
    [
      [15, ['pageview', 'custom', 'phone_click']],
      [60, ['heartbeat']],
    ]
  );
});

test('a request is text/plain, keepalive, without credentials, and carries the protocol fields', async () => {
  const b = new Browser();
  const p = b.open({ url: 'https://shop.example/landing?utm_source=google&utm_medium=cpc&gclid=Cj0K', referrer: 'https://www.google.com/' });
  p.api.flush();
  await b.clock.advance(0);
  const [r] = b.net.log;
  assert.equal(r.url, 'https://t.example/api/sync');
  assert.equal(r.method, 'POST');
  assert.deepEqual(r.headers, { 'Content-Type': 'text/plain;charset=UTF-8' });
  assert.equal(r.keepalive, true);
  assert.equal(r.credentials, 'omit');
  const body = r.body;
  assert.deepEqual(Object.keys(body), ['v', 'site', 'sid', 'vid', 'sent_at', 'failures', 'channel', 'ctx', 'events']);
  assert.equal(body.v, 1);
  assert.equal(body.site, 'demo');
  assert.match(body.sid, UUID);
  assert.match(body.vid, UUID);
  assert.equal(body.sent_at, START);
  assert.equal(body.failures, 0);
  assert.equal(body.channel, 'primary');
  assert.deepEqual(body.ctx, {
    url: 'https://shop.example/landing?utm_source=google&utm_medium=cpc&gclid=Cj0K',
    referrer: 'https://www.google.com/',
    gclid: 'Cj0K',
    wbraid: null,
    gbraid: null,
    utm_source: 'google',
    utm_medium: 'cpc',
    utm_campaign: null,
    utm_term: null,
    utm_content: null,
    lang: 'tr-TR',
    tz: Intl.DateTimeFormat().resolvedOptions().timeZone,
    sw: 390,
    sh: 844,
    touch: 0, // the fake browser's navigator.maxTouchPoints: a desktop
  });
  const [pv] = body.events;
  assert.deepEqual(Object.keys(pv), ['id', 'type', 'ts', 'url', 'title']);
  assert.match(pv.id, UUID);
  assert.equal(pv.ts, START);
  assert.equal(pv.url, 'https://shop.example/landing?utm_source=google&utm_medium=cpc&gclid=Cj0K');
});

test('ctx.touch is navigator.maxTouchPoints, left out where the browser has none', async () => {
  const ctxOf = async (opts) => {
    const b = new Browser();
    b.open(opts).api.flush();
    await b.clock.advance(0);
    return b.net.log[0].body.ctx;
  };
  assert.equal((await ctxOf({ maxTouchPoints: 5 })).touch, 5); // a phone, or an iPad asking for the desktop site
  assert.equal((await ctxOf({})).touch, 0);
  const none = await ctxOf({ hooks: { beforeScript: (page) => delete page.window.navigator.maxTouchPoints } });
  assert.equal('touch' in none, false);
  assert.equal(none.sw, 390);
});

test('a batch holds at most 100 events; the rest follow in further requests', async () => {
  const b = new Browser();
  const p = b.open();
  for (let i = 0; i < 250; i++) p.api.track('item', { i });
  p.api.flush();
  await b.clock.advance(0);
  assert.deepEqual(
    postsOf(b.net).map((r) => r.body.events.length),
    [100, 100, 51]
  );
  assert.equal(b.net.stored.size, 251);
  assert.deepEqual(p.queue(), []);
});

test('the queue is bounded: the oldest non-conversion events go first', async () => {
  const b = new Browser();
  b.net.handler = () => ({ status: 503 });
  const p = b.open();
  for (let i = 0; i < 3; i++) p.click({ href: `tel:+9055500000${i}` });
  for (let i = 1; i <= 400; i++) p.api.track('item', { i });
  const q = p.queue();
  assert.equal(q.length, 300);
  assert.deepEqual(
    q.filter((e) => e.type === 'phone_click').map((e) => e.target),
    ['+90555000000', '+90555000001', '+90555000002'],
    'conversions are kept'
  );
  const customs = q.filter((e) => e.type === 'custom').map((e) => e.props.i);
  assert.equal(customs.length, 297);
  assert.equal(customs[0], 104, 'the pageview and items 1–103 went, oldest first');
  assert.equal(customs.at(-1), 400);
  assert.equal(q.filter((e) => e.type === 'pageview').length, 0);
});

test('when the queue holds only conversions, the oldest one makes room', async () => {
  const b = new Browser();
  b.net.handler = () => ({ status: 503 });
  const p = b.open();
  p.api.track('x'); // make sure nothing but conversions is left after the next line
  for (let i = 0; i < 305; i++) p.submit({ id: `f${i}` });
  const q = p.queue();
  assert.equal(q.length, 300);
  assert.deepEqual(
    [q[0].form, q.at(-1).form],
    ['f5', 'f304']
  );
});

test('heartbeats of one page replace each other in the queue: their values are cumulative', async () => {
  const b = new Browser();
  b.net.handler = () => ({ status: 503 });
  const p = b.open();
  for (let i = 0; i < 20; i++) {
    await b.clock.advance(30 * SECOND);
    p.scrollTo(100 * i);
  }
  const hb = p.queue().filter((e) => e.type === 'heartbeat');
  assert.equal(hb.length, 1);
  assert.equal(hb[0].ts, START + 10 * MINUTE);
  assert.equal(hb[0].active_ms, 10 * MINUTE);
});

// retries lists [seconds, failures field] of every POST.
const attempts = (net) => postsOf(net).map((r) => [secs(r), r.body.failures]);

test('failures are retried with exponential back-off and jitter, up to 5 minutes', async (t) => {
  await t.test('lowest jitter: half of 2, 4, 8 … s', async () => {
    const b = new Browser();
    b.random = () => 0;
    let n = 0;
    b.net.handler = () => (++n <= 4 ? 'error' : { status: 200 }); // unanswered: each is reported
    const p = b.open();
    p.click({ href: 'tel:1' });
    await b.clock.advance(20 * SECOND);
    assert.deepEqual(attempts(b.net), [
      [0, 0],
      [1, 1],
      [3, 2],
      [7, 3],
      [15, 4],
    ]);
    assert.deepEqual(p.queue(), []);
    assert.equal(b.net.stored.size, 2);
    p.click({ href: 'tel:2' });
    await b.clock.advance(0);
    assert.deepEqual(attempts(b.net).at(-1), [20, 0], 'a success resets the failure count');
  });
  await t.test('highest jitter: the whole delay', async () => {
    const b = new Browser();
    b.random = () => 0.999;
    b.net.handler = () => ({ status: 500 });
    const p = b.open();
    p.click({ href: 'tel:1' });
    await b.clock.advance(15 * SECOND);
    assert.deepEqual(
      attempts(b.net).map(([s]) => Math.round(s)),
      [0, 2, 6, 14]
    );
  });
  await t.test('a delay with a fraction of a millisecond still fires the retry', async () => {
    // Timers keep the fraction, Date.now() does not: the retry must not find itself early.
    const b = new Browser();
    b.random = () => 0.123456789;
    let n = 0;
    b.net.handler = () => ({ status: ++n <= 3 ? 503 : 200 });
    const p = b.open();
    p.click({ href: 'tel:1' });
    await b.clock.advance(20 * SECOND);
    assert.deepEqual(
      attempts(b.net).map(([sec, f]) => [Math.floor(sec), f]),
      [
        [0, 0],
        [1, 0], // a 5xx is an answer: not reported
        [3, 0],
        [7, 0],
      ]
    );
    assert.deepEqual(p.queue(), []);
  });
  await t.test('the delay stops growing at 5 minutes', async () => {
    const b = new Browser();
    b.random = () => 0;
    b.net.handler = () => ({ status: 500 });
    const p = b.open({ visibility: 'hidden' }); // no heartbeats, only retries
    p.api.track('x');
    p.submit({ id: 'contact' });
    await b.clock.advance(30 * MINUTE);
    const s = attempts(b.net).map(([sec]) => sec);
    const gaps = s.slice(1).map((v, i) => v - s[i]);
    assert.deepEqual(gaps.slice(0, 10), [1, 2, 4, 8, 16, 32, 64, 128, 150, 150]);
  });
});

test('a network error and a timeout count as failures and are retried', async (t) => {
  await t.test('network error', async () => {
    const b = new Browser();
    b.random = () => 0;
    let n = 0;
    b.net.handler = () => (++n === 1 ? 'error' : { status: 200 });
    const p = b.open();
    p.submit({ id: 'contact' });
    await b.clock.advance(2 * SECOND);
    assert.deepEqual(attempts(b.net), [
      [0, 0],
      [1, 1],
    ]);
    assert.deepEqual(p.queue(), []);
  });
  await t.test('no answer within 10 seconds', async () => {
    const b = new Browser();
    b.random = () => 0;
    let n = 0;
    b.net.handler = () => (++n === 1 ? 'hang' : { status: 200 });
    const p = b.open();
    p.submit({ id: 'contact' });
    await b.clock.advance(9 * SECOND);
    assert.equal(postsOf(b.net).length, 1, 'still waiting at 9 s');
    await b.clock.advance(3 * SECOND);
    assert.deepEqual(attempts(b.net), [
      [0, 0],
      [11, 1],
    ]);
    assert.deepEqual(p.queue(), []);
  });
});

test('429 waits for Retry-After, keeps the batch and is no failure', async () => {
  const b = new Browser();
  b.random = () => 0;
  let n = 0;
  b.net.handler = (r) => (r.method === 'POST' && ++n === 1 ? { status: 429, headers: { 'Retry-After': '30' } } : { status: 200 });
  const p = b.open();
  p.click({ href: 'tel:1' });
  await b.clock.advance(10 * SECOND);
  p.hide(); // no beacon while the server asked us to wait
  p.show();
  p.click({ href: 'tel:2' }); // waits too
  await b.clock.advance(19 * SECOND);
  assert.equal(b.net.log.length, 1);
  await b.clock.advance(1 * SECOND);
  assert.deepEqual(attempts(b.net), [
    [0, 0],
    [30, 0],
  ]);
  assert.deepEqual(
    b.net.storedEvents().map((e) => e.type),
    ['pageview', 'phone_click', 'heartbeat', 'phone_click']
  );
});

test('400 and 403 drop the batch: it would never succeed', async () => {
  for (const status of [400, 403]) {
    const b = new Browser();
    b.net.handler = () => ({ status });
    const p = b.open();
    p.click({ href: 'tel:1' });
    await b.clock.advance(50 * SECOND);
    assert.equal(postsOf(b.net).length, 1, `${status}: no retry`);
    assert.deepEqual(p.queue(), [], `${status}: dropped from the queue`);
  }
});

test('413 splits the batch and retries the halves', async () => {
  const b = new Browser();
  b.net.handler = (r) => ({ status: r.body.events.length > 30 ? 413 : 200 });
  const p = b.open();
  for (let i = 0; i < 99; i++) p.api.track('item', { i }); // 100 with the pageview
  p.api.flush();
  await b.clock.advance(0);
  assert.deepEqual(
    postsOf(b.net).map((r) => [r.body.events.length, r.body.failures]),
    [
      [100, 0],
      [50, 0],
      [25, 0],
      [25, 0],
      [25, 0],
      [25, 0],
    ]
  );
  assert.equal(b.net.stored.size, 100);
  assert.deepEqual(p.queue(), []);
});

test('413 for a single event drops it; an event too large for any request is never sent', async () => {
  const b = new Browser();
  b.net.handler = (r) => ({ status: r.body.events.some((e) => e.name === 'big') ? 413 : 200 });
  const p = b.open();
  p.api.flush();
  await b.clock.advance(0);
  p.api.track('big', { a: 'x'.repeat(1000) });
  p.api.flush();
  await b.clock.advance(0);
  assert.deepEqual(p.queue(), []);
  p.api.track('huge', { a: 'x'.repeat(70000) });
  p.api.track('after');
  p.api.flush();
  await b.clock.advance(0);
  assert.deepEqual(
    postsOf(b.net).map((r) => r.body.events.map((e) => e.name || e.type)),
    [['pageview'], ['big'], ['after']]
  );
  assert.deepEqual(p.queue(), []);
});

test('hiding the page sends the queue by beacon and keeps it; the next send repeats it, stored once', async () => {
  const b = new Browser();
  const p = b.open();
  p.api.track('quote_opened');
  p.hide();
  const [beacon] = p.requests({ kind: 'beacon' });
  assert.equal(beacon.url, 'https://t.example/api/sync');
  assert.equal(beacon.body.channel, 'primary');
  assert.deepEqual(
    beacon.body.events.map((e) => e.type),
    ['pageview', 'custom', 'heartbeat']
  );
  assert.deepEqual(
    p.queue().map((e) => e.id),
    beacon.body.events.map((e) => e.id),
    "a beacon's outcome is unknown: its events stay queued"
  );
  p.show();
  await b.clock.advance(0);
  const fetched = postsOf(b.net)[0].body.events.map((e) => e.id);
  assert.deepEqual(fetched.slice(0, 2), beacon.body.events.slice(0, 2).map((e) => e.id));
  assert.deepEqual(p.queue(), []);
  assert.equal(b.net.stored.size, 4, 'pageview, custom, and the latest heartbeat (which replaced the hidden one)');
});

test('pagehide and beforeunload with the page already hidden send one beacon in all', async () => {
  const b = new Browser();
  const p = b.open();
  p.close();
  assert.equal(p.requests({ kind: 'beacon' }).length, 1);
  assert.equal(p.requests({ kind: 'fetch' }).length, 0);
});

test('a beacon splits the queue by session and by 100 events', async () => {
  const b = new Browser();
  b.net.handler = () => ({ status: 503 });
  const first = b.open({ url: 'https://shop.example/a' });
  first.close();
  const p = b.open({ url: 'https://shop.example/b' }); // another tab: another session
  for (let i = 0; i < 120; i++) p.api.track('item', { i });
  const before = b.net.log.length;
  p.hide();
  const beacons = b.net.log.slice(before);
  assert.deepEqual(
    beacons.map((r) => [r.kind, r.body.ctx.url, r.body.events.length]),
    [
      ['beacon', 'https://shop.example/a', 2],
      ['beacon', 'https://shop.example/b', 100],
      ['beacon', 'https://shop.example/b', 22],
    ]
  );
});

test('events left by a tab that closed are sent by the next page load, each session with its own context', async () => {
  const b = new Browser();
  b.net.handler = () => ({ status: 503 }); // the beacon and the click's sends fail
  const old = b.open({ url: 'https://shop.example/?utm_source=news', referrer: 'https://news.example/' });
  old.click({ href: 'https://wa.me/905551112233' });
  await b.clock.advance(5 * SECOND);
  old.close();
  assert.equal(b.net.stored.size, 0);

  b.net.handler = () => ({ status: 200 });
  await b.clock.advance(MINUTE);
  const p = b.open({ url: 'https://shop.example/contact' }); // a new tab, a new session
  await b.clock.advance(0);
  const loadPosts = postsOf(b.net).filter((r) => r.page === p);
  assert.equal(loadPosts.length, 2, 'sent at load, not at the first heartbeat');
  const [left, mine] = loadPosts;
  assert.equal(left.body.ctx.url, 'https://shop.example/?utm_source=news');
  assert.equal(left.body.ctx.referrer, 'https://news.example/');
  assert.deepEqual(
    left.body.events.map((e) => e.type),
    ['pageview', 'whatsapp_click', 'heartbeat']
  );
  assert.equal(mine.body.ctx.url, 'https://shop.example/contact');
  assert.notEqual(left.body.sid, mine.body.sid);
  assert.deepEqual(p.queue(), []);
  assert.equal(b.net.storedEvents('whatsapp_click').length, 1);
});

// counted is what the server counts of a run of requests: its own 5xx answers,
// and the failures reported by requests whose batch it stored (a 2xx).
const counted = (net, statusOf) =>
  postsOf(net).reduce((n, r) => {
    const st = statusOf(r);
    return n + (st >= 500 ? 1 : st >= 200 && st < 300 ? r.body.failures : 0);
  }, 0);

test('failures: a network error, then a 5xx, then a 200 reports exactly 1; each failed attempt is counted once end to end', async () => {
  const b = new Browser();
  b.random = () => 0;
  const answers = ['error', { status: 503 }, { status: 200 }];
  const status = new Map();
  b.net.handler = (r) => {
    const a = answers.shift() || { status: 200 };
    status.set(r, a.status);
    return a;
  };
  const p = b.open();
  p.click({ href: 'tel:1' }); // no answer at 0 s, 503 at 1 s, 200 at 3 s
  await b.clock.advance(5 * SECOND);
  p.click({ href: 'tel:2' });
  await b.clock.advance(0);
  assert.deepEqual(attempts(b.net), [
    [0, 0],
    [1, 1],
    [3, 1], // the network error, not the 503: the server counted that itself
    [5, 0], // the 200 carried it
  ]);
  assert.equal(counted(b.net, (r) => status.get(r)), 2, 'two attempts failed, two failures counted');
});

test('failures wait for a 2xx: a 4xx batch is not stored, so the server does not count what it reports', async () => {
  const b = new Browser();
  b.random = () => 0;
  const answers = ['error', 'error', { status: 400 }];
  const status = new Map();
  b.net.handler = (r) => {
    const a = answers.shift() || { status: 200 };
    status.set(r, a.status);
    return a;
  };
  const p = b.open();
  p.click({ href: 'tel:1' }); // no answer at 0 s and 1 s, 400 at 3 s (dropped)
  await b.clock.advance(5 * SECOND);
  p.click({ href: 'tel:2' });
  await b.clock.advance(0);
  p.click({ href: 'tel:3' });
  await b.clock.advance(0);
  assert.deepEqual(
    attempts(b.net).map(([, failures]) => failures),
    [0, 1, 2, 2, 0],
    'the 400 answered the request that reported the two failures; the next 2xx carries them'
  );
  assert.equal(counted(b.net, (r) => status.get(r)), 2);
});

test('failures reported are at most 10', async () => {
  const b = new Browser();
  b.random = () => 0;
  b.net.handler = () => 'error';
  const p = b.open({ visibility: 'hidden' }); // no heartbeats, only retries
  p.submit({ id: 'contact' });
  await b.clock.advance(20 * MINUTE); // attempts at 0, 1, 3, 7, … s, then every 150 s
  b.net.handler = () => ({ status: 200 });
  await b.clock.advance(5 * MINUTE);
  const f = attempts(b.net).map(([, failures]) => failures);
  assert.deepEqual(f.slice(0, 12), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10]);
  assert.equal(f.length > 13, true, `${f.length} attempts`);
  assert.deepEqual(f.slice(10), new Array(f.length - 10).fill(10), 'up to the 2xx, which reports 10');
  assert.equal(b.net.storedEvents('form_submit').length, 1);
  assert.equal(p.storage('om_b').failures, 0);

  // A count over 10 left by an older script is reported as 10.
  const c = new Browser();
  c.local.set('om_b', JSON.stringify({ mode: 'primary', failures: 37, streak: 0 }));
  c.open().api.flush();
  await c.clock.advance(0);
  assert.deepEqual(
    postsOf(c.net).map((r) => r.body.failures),
    [10]
  );
});

test('attempts made offline are not reported; those after the connection is back are', async () => {
  const b = new Browser();
  b.random = () => 0;
  b.net.handler = () => 'error';
  const p = b.open();
  p.goOffline();
  p.click({ href: 'tel:1' });
  await b.clock.advance(10 * SECOND); // offline attempts at 0, 1, 3 and 7 s
  assert.equal(b.net.requests({ offline: true }).length, 4);
  assert.equal(p.storage('om_b').failures, 0);
  p.goOnline();
  await b.clock.advance(10 * SECOND); // online, unanswered, at 15 s
  b.net.handler = () => ({ status: 200 });
  await b.clock.advance(20 * SECOND); // answered at 31 s
  assert.deepEqual(
    postsOf(b.net).map((r) => [secs(r), r.offline, r.body.failures]),
    [
      [0, true, 0],
      [1, true, 0],
      [3, true, 0],
      [7, true, 0],
      [15, false, 0],
      [31, false, 1], // only the one failure while online
    ]
  );
  assert.equal(b.net.storedEvents('phone_click').length, 1);
});

test('a beacon reports no failures; the fetch that repeats its events does', async () => {
  const b = new Browser();
  // A previous page of this visitor saw three failures that no answer has carried yet.
  b.local.set('om_b', JSON.stringify({ mode: 'primary', failures: 3, streak: 0 }));
  const p = b.open();
  p.api.track('quote_opened');
  p.hide();
  const [beacon] = p.requests({ kind: 'beacon' });
  assert.equal(beacon.body.failures, 0);
  p.show();
  await b.clock.advance(0);
  p.click({ href: 'tel:1' });
  await b.clock.advance(0);
  assert.deepEqual(
    postsOf(b.net).map((r) => r.body.failures),
    [3, 0]
  );
});

test('the body limit counts UTF-8 bytes, not characters', async () => {
  const b = new Browser();
  const p = b.open();
  // 60 events with titles of 1,000 two-byte characters: about 62,000 characters
  // but over 120,000 bytes, far past the 60,000-byte limit of one request.
  for (let i = 0; i < 60; i++) p.api.track('note', { text: 'ş'.repeat(500) + 'İ'.repeat(500) });
  p.api.flush();
  await b.clock.advance(0);
  const posts = postsOf(b.net);
  assert.equal(posts.length > 2, true, `split into ${posts.length} requests`);
  for (const r of posts) {
    assert.equal(Buffer.byteLength(r.rawBody, 'utf8') <= 60000, true, `a body of ${Buffer.byteLength(r.rawBody, 'utf8')} bytes`);
  }
  assert.equal(b.net.stored.size, 61, 'every event stored: the pageview and the 60 notes');
});
