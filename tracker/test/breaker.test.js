'use strict';
// The circuit breaker and failover (PROTOCOL.md "Circuit breaker and failover").

const test = require('node:test');
const assert = require('node:assert/strict');
const { Browser, START, SECOND, MINUTE, DEFAULT_DATASET } = require('../testkit/fakewindow');

const PRIMARY = DEFAULT_DATASET.api;
const FAILOVER = 'https://failover.example/api/sync';
const WITH_FAILOVER = { ...DEFAULT_DATASET, failoverApi: FAILOVER };

const secs = (r) => (r.at - START) / SECOND;
// sends lists [seconds, endpoint, channel, failures] of every POST made with fetch.
const sends = (net) =>
  net.requests({ kind: 'fetch', method: 'POST' }).map((r) => [secs(r), r.url === PRIMARY ? 'primary' : 'failover', r.body.channel, r.body.failures]);

// primaryDown answers 500 on the primary and 200 on the failover.
function primaryDown(net) {
  net.handler = (r) => ({ status: r.url === PRIMARY ? 500 : 200 });
}

test('three consecutive primary failures open the breaker: the same events go to the failover', async () => {
  const b = new Browser();
  b.random = () => 0;
  primaryDown(b.net);
  const p = b.open({ dataset: WITH_FAILOVER });
  p.click({ href: 'tel:+905551112233' });
  await b.clock.advance(2 * SECOND);
  // A 5xx is an answer: the server has counted it, the tracker reports no failure for it.
  assert.deepEqual(sends(b.net), [
    [0, 'primary', 'primary', 0],
    [1, 'primary', 'primary', 0],
  ]);
  assert.equal(p.storage('om_b').mode, 'primary', 'two failures are not enough');
  await b.clock.advance(2 * SECOND);
  assert.deepEqual(sends(b.net), [
    [0, 'primary', 'primary', 0],
    [1, 'primary', 'primary', 0],
    [3, 'primary', 'primary', 0],
    [3, 'failover', 'failover', 0], // at once
  ]);
  const [first, , , last] = b.net.requests({ kind: 'fetch', method: 'POST' });
  assert.deepEqual(
    last.body.events.map((e) => e.id),
    first.body.events.map((e) => e.id)
  );
  assert.deepEqual(p.storage('om_b'), {
    mode: 'failover',
    failures: 0,
    streak: 0,
    since: START + 3 * SECOND,
    nextProbeAt: START + 3 * SECOND + 10 * MINUTE,
  });
  assert.deepEqual(p.queue(), []);
  assert.equal(b.net.storedEvents('phone_click').length, 1);

  // Everything after goes to the failover, beacons included.
  await b.clock.advance(60 * SECOND);
  p.hide();
  assert.deepEqual(sends(b.net).at(-1), [60, 'failover', 'failover', 0]);
  const [beacon] = p.requests({ kind: 'beacon' });
  assert.equal(beacon.url, FAILOVER);
  assert.equal(beacon.body.channel, 'failover');
});

test('network errors and timeouts open the breaker too, and the failover hears of them', async () => {
  const b = new Browser();
  b.random = () => 0;
  const answers = ['error', 'hang', 'error'];
  b.net.handler = (r) => (r.url === PRIMARY ? answers.shift() || { status: 500 } : { status: 200 });
  const p = b.open({ dataset: WITH_FAILOVER });
  p.click({ href: 'tel:1' });
  await b.clock.advance(20 * SECOND);
  assert.deepEqual(sends(b.net), [
    [0, 'primary', 'primary', 0],
    [1, 'primary', 'primary', 1], // unanswered for 10 s
    [13, 'primary', 'primary', 2],
    [13, 'failover', 'failover', 3], // the three unanswered attempts, reported once
  ]);
  assert.equal(p.storage('om_b').failures, 0, 'a 2xx carried them');
});

test('a 5xx and unanswered attempts count alike toward the breaker', async () => {
  const b = new Browser();
  b.random = () => 0;
  const answers = ['error', { status: 503 }, 'error'];
  b.net.handler = (r) => (r.url === PRIMARY ? answers.shift() : { status: 200 });
  const p = b.open({ dataset: WITH_FAILOVER });
  p.click({ href: 'tel:1' });
  await b.clock.advance(5 * SECOND);
  assert.deepEqual(sends(b.net), [
    [0, 'primary', 'primary', 0],
    [1, 'primary', 'primary', 1],
    [3, 'primary', 'primary', 1], // the 503 is not reported
    [3, 'failover', 'failover', 2],
  ]);
});

test('attempts made offline neither open the breaker nor count as failures', async () => {
  const b = new Browser();
  b.random = () => 0;
  primaryDown(b.net);
  const p = b.open({ dataset: WITH_FAILOVER });
  p.goOffline();
  p.click({ href: 'tel:1' });
  await b.clock.advance(40 * SECOND);
  const offline = b.net.requests({ kind: 'fetch', method: 'POST', offline: true });
  assert.equal(offline.length >= 5, true, `${offline.length} attempts while offline`);
  assert.deepEqual(
    offline.map((r) => [r.url, r.body.failures]),
    new Array(offline.length).fill([PRIMARY, 0])
  );
  assert.deepEqual(p.storage('om_b'), { mode: 'primary', failures: 0, streak: 0 });
  // Back online, the primary still failing: three answers of its own open the breaker.
  p.goOnline();
  const before = sends(b.net).length;
  await b.clock.advance(10 * MINUTE);
  assert.deepEqual(
    sends(b.net)
      .slice(before, before + 4)
      .map(([, endpoint, , f]) => [endpoint, f]),
    [
      ['primary', 0],
      ['primary', 0],
      ['primary', 0],
      ['failover', 0],
    ]
  );
  assert.equal(b.net.storedEvents('phone_click').length, 1);
});

test('4xx answers never trip the breaker and break a run of failures', async () => {
  const b = new Browser();
  b.random = () => 0;
  const script = [500, 500, 400, 500, 500, 403, 429, 413, 400, 500, 500];
  let n = 0;
  b.net.handler = (r) => ({ status: r.method === 'POST' ? script[n++] ?? 200 : 200, headers: { 'Retry-After': '1' } });
  const p = b.open({ dataset: WITH_FAILOVER });
  for (let i = 0; i < 6; i++) {
    p.click({ href: `tel:${i}` });
    await b.clock.advance(20 * SECOND);
  }
  assert.equal(n >= script.length, true, 'every scripted answer was used');
  assert.deepEqual(
    sends(b.net).map(([, endpoint]) => endpoint),
    new Array(sends(b.net).length).fill('primary')
  );
  assert.equal(p.storage('om_b').mode, 'primary');
});

test('without a failover endpoint failures are retried on the primary', async () => {
  const b = new Browser();
  b.random = () => 0;
  b.net.handler = () => ({ status: 502 });
  const p = b.open();
  p.submit({ id: 'contact' });
  await b.clock.advance(MINUTE);
  const s = sends(b.net);
  assert.equal(s.length > 3, true);
  assert.deepEqual(
    s.map(([, endpoint, channel]) => [endpoint, channel]),
    new Array(s.length).fill(['primary', 'primary'])
  );
  assert.deepEqual(
    s.map(([, , , f]) => f),
    new Array(s.length).fill(0),
    'a 5xx is an answer: the server counted it, the tracker does not report it'
  );
});

test('the open breaker persists: a reload, and another tab, stay on the failover', async () => {
  const b = new Browser();
  b.random = () => 0;
  primaryDown(b.net);
  let p = b.open({ dataset: WITH_FAILOVER });
  p.click({ href: 'tel:1' });
  await b.clock.advance(5 * SECOND);
  assert.equal(p.storage('om_b').mode, 'failover');
  const before = b.net.log.length;
  p = p.reload();
  p.click({ href: 'tel:2' });
  await b.clock.advance(0);
  const after = b.net.log.slice(before);
  assert.deepEqual(
    after.map((r) => [r.kind, r.url, r.body.channel]),
    [
      ['beacon', FAILOVER, 'failover'], // the closing page
      ['fetch', FAILOVER, 'failover'], // the new page, at load: what the old one left, and the pageview
      ['fetch', FAILOVER, 'failover'], // the click
    ]
  );
  const other = b.open({ dataset: WITH_FAILOVER });
  other.submit({ id: 'contact' });
  await b.clock.advance(0);
  assert.equal(b.net.log.at(-1).url, FAILOVER);
  assert.equal(b.net.requests({ url: PRIMARY }).length, 3, 'only the three failures went to the primary');
});

test('the primary is probed with GET every 10 minutes; a 200 closes the breaker', async () => {
  const b = new Browser();
  b.random = () => 0;
  let primaryUp = false;
  b.net.handler = (r) => ({ status: r.url === FAILOVER || primaryUp ? 200 : r.method === 'GET' ? 503 : 500 });
  const p = b.open({ dataset: WITH_FAILOVER });
  p.click({ href: 'tel:1' });
  await b.clock.advance(3 * SECOND); // opened at 3 s
  await b.clock.advance(25 * MINUTE);
  const probes = () => b.net.requests({ method: 'GET' });
  assert.deepEqual(
    probes().map((r) => [secs(r), r.url, r.credentials, r.cache]),
    [
      [603, PRIMARY, 'omit', 'no-store'],
      [1203, PRIMARY, 'omit', 'no-store'],
    ]
  );
  assert.equal(p.storage('om_b').nextProbeAt, START + 1803 * SECOND);
  primaryUp = true;
  await b.clock.advance(5 * MINUTE);
  assert.deepEqual(
    probes().map(secs),
    [603, 1203, 1803]
  );
  assert.equal(p.storage('om_b').mode, 'primary');
  const before = sends(b.net).length;
  p.click({ href: 'tel:2' });
  await b.clock.advance(0);
  assert.deepEqual(sends(b.net).slice(before), [[1803, 'primary', 'primary', 0]]);
  await b.clock.advance(30 * MINUTE);
  assert.equal(probes().length, 3, 'no probe while closed');
});

test('a probe interval given on the script tag replaces the 10 minutes (for tests)', async () => {
  const b = new Browser();
  b.random = () => 0;
  primaryDown(b.net);
  const p = b.open({ dataset: { ...WITH_FAILOVER, probeInterval: '2000' } });
  p.click({ href: 'tel:1' });
  await b.clock.advance(10 * SECOND);
  assert.deepEqual(
    b.net.requests({ method: 'GET' }).map(secs),
    [5, 7, 9]
  );
});

test('a page that loads with the breaker open and the probe due probes at once', async () => {
  const b = new Browser();
  b.random = () => 0;
  primaryDown(b.net);
  const p = b.open({ dataset: WITH_FAILOVER });
  p.click({ href: 'tel:1' });
  await b.clock.advance(5 * SECOND);
  p.close();
  await b.clock.advance(20 * MINUTE); // no page open: nobody probes
  assert.equal(b.net.requests({ method: 'GET' }).length, 0);
  b.net.handler = () => ({ status: 200 });
  const q = b.open({ dataset: WITH_FAILOVER });
  await b.clock.advance(0);
  assert.deepEqual(
    b.net.log.filter((r) => r.page === q).map((r) => [r.method, r.url]),
    [
      ['POST', FAILOVER], // left over from the closed tab, sent at load: the breaker is still open
      ['GET', PRIMARY], // the probe was due
      ['POST', FAILOVER], // this page's pageview, sent before the probe's answer arrived
    ]
  );
  assert.equal(q.storage('om_b').mode, 'primary');
  q.click({ href: 'tel:2' });
  await b.clock.advance(0);
  assert.equal(b.net.log.at(-1).url, PRIMARY);
});

test('tabs share the probe schedule: one probe per interval, not one per tab', async () => {
  const b = new Browser();
  b.random = () => 0;
  primaryDown(b.net);
  b.net.handler = (r) => ({ status: r.url === PRIMARY ? (r.method === 'GET' ? 503 : 500) : 200 });
  const p1 = b.open({ dataset: WITH_FAILOVER });
  p1.click({ href: 'tel:1' });
  await b.clock.advance(5 * SECOND);
  b.open({ dataset: WITH_FAILOVER });
  b.open({ dataset: WITH_FAILOVER });
  await b.clock.advance(31 * MINUTE);
  assert.deepEqual(
    b.net.requests({ method: 'GET' }).map(secs),
    [603, 1203, 1803]
  );
});
