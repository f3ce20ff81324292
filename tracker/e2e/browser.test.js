'use strict';
// The tracker in a real browser (Debian's Chromium via playwright-core) against
// the real `opsmantik dev` and PostgreSQL: issue 3's scenarios (a)–(d).

const test = require('node:test');
const assert = require('node:assert/strict');
const { startStack, newContext, eventually } = require('./stack');

let stack;
test.before(async () => {
  stack = await startStack();
});
test.after(async () => {
  if (stack) await stack.stop();
});

async function sessionRow(sid) {
  const { rows } = await stack.pg.query(
    `SELECT pageviews, event_count, max_scroll, phone_clicks, whatsapp_clicks, form_submits, lead_score,
            engaged_ms, traffic_source, device_type, is_bot, gclid, utm_source
       FROM sessions WHERE id = $1`,
    [sid]
  );
  return rows[0];
}

// storedEvents lists the session's event rows, [type, id], in time order.
async function storedEvents(sid) {
  const { rows } = await stack.pg.query(`SELECT type, id::text AS id, data FROM events WHERE session_id = $1 ORDER BY occurred_at, type`, [sid]);
  return rows;
}

async function countByType(sid) {
  const { rows } = await stack.pg.query(`SELECT type, count(*)::int AS n FROM events WHERE session_id = $1 GROUP BY type ORDER BY type`, [sid]);
  return Object.fromEntries(rows.map((r) => [r.type, r.n]));
}

const sidOf = (page) => page.evaluate(() => JSON.parse(sessionStorage.getItem('om_s')).id);
const breakerOf = (page) => page.evaluate(() => JSON.parse(localStorage.getItem('om_b') || 'null'));
// sentIds is every non-heartbeat event id the browser sent for a session.
const sentIds = (sent, sid) =>
  new Set(sent.filter((r) => r.body && r.body.sid === sid).flatMap((r) => r.body.events.filter((e) => e.type !== 'heartbeat').map((e) => e.id)));

// The browser reports its requests to the test asynchronously, so a row can be
// in the database a moment before its request is in `sent`. storedAsSent waits
// until the stored ids are exactly the ids the browser sent (none lost, none
// made up) and returns the rows; it fails if they never match.
const storedAsSent = (sent, sid) =>
  eventually(async () => {
    const rows = await storedEvents(sid);
    const stored = new Set(rows.map((r) => r.id));
    const want = sentIds(sent, sid);
    return stored.size === want.size && [...want].every((id) => stored.has(id)) && rows;
  }, 'the stored events to be exactly the events the browser sent');

// submitForm fills the contact form and submits it as its button would
// (requestSubmit fires the same submit event). Not by pointer or key: after a
// tel: link, headless Chromium's pending external-protocol navigation can
// swallow later input, and scroll restoration can move a pointer's target.
async function submitForm(page) {
  await page.fill('input[name=name]', 'Ayşe');
  await page.evaluate(() => document.getElementById('contact').requestSubmit());
}

async function loadTracked(page, url) {
  await page.goto(url);
  await page.waitForFunction(() => window.opsmantik && sessionStorage.getItem('om_s'));
}

test('(a) a visit with pageviews, scroll and three conversions gives the expected session and events', async () => {
  const { context, sent } = await newContext(stack.browser);
  try {
    const page = await context.newPage();
    // The WhatsApp link leaves the site: answer it locally, then come back.
    await page.route('https://wa.me/**', (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<title>WhatsApp</title>' }));
    const landing = `${stack.dev.origin}/?gclid=E2E-gclid-a&utm_source=google&utm_medium=cpc`;
    await loadTracked(page, landing);
    const sid = await sidOf(page);

    await page.mouse.wheel(0, 20000); // to the bottom
    await page.waitForFunction(() => window.scrollY + innerHeight >= document.documentElement.scrollHeight - 1);
    await page.click('#whatsapp');
    await page.waitForURL('https://wa.me/**');
    await page.goBack(); // a pageview again: from the back-forward cache or a new load
    await page.waitForFunction(() => window.opsmantik && document.readyState === 'complete');
    await page.click('#phone');
    await submitForm(page);

    const row = await eventually(async () => {
      const r = await sessionRow(sid);
      return r && r.form_submits === 1 && r.pageviews === 2 && r.max_scroll === 100 && r;
    }, 'the session row with both pageviews, the form submit and the scroll depth');
    assert.deepEqual(
      {
        pageviews: row.pageviews,
        phone_clicks: row.phone_clicks,
        whatsapp_clicks: row.whatsapp_clicks,
        form_submits: row.form_submits,
        max_scroll: row.max_scroll,
        traffic_source: row.traffic_source,
        device_type: row.device_type,
        is_bot: row.is_bot,
        gclid: row.gclid,
        utm_source: row.utm_source,
      },
      {
        pageviews: 2,
        phone_clicks: 1,
        whatsapp_clicks: 1,
        form_submits: 1,
        max_scroll: 100,
        traffic_source: 'google_ads',
        device_type: 'desktop',
        is_bot: false,
        gclid: 'E2E-gclid-a',
        utm_source: 'google',
      }
    );
    // Issue 2's weights: phone 45 + WhatsApp 40 + form 50 + … capped at 100.
    assert.equal(row.lead_score, 100);
    assert.equal(row.event_count, 5);
    assert.equal(Number(row.engaged_ms) > 0, true);

    assert.deepEqual(await countByType(sid), { form_submit: 1, pageview: 2, phone_click: 1, whatsapp_click: 1 }, 'no heartbeat rows');
    const rows = await storedAsSent(sent, sid);
    assert.equal(rows.length, new Set(rows.map((r) => r.id)).size, 'every event the browser sent is stored once');
    const data = Object.fromEntries(rows.filter((r) => r.type !== 'pageview').map((r) => [r.type, r.data]));
    assert.equal(data.phone_click.target, '+905551112233');
    assert.equal(data.whatsapp_click.target, 'https://wa.me/905551112233');
    assert.equal(data.form_submit.form, 'contact');
    assert.equal(
      sent.every((r) => r.method === 'POST' && r.body.channel === 'primary'),
      true
    );
  } finally {
    await context.close();
  }
});

test('(b) a failing primary: three failures move traffic to the failover, a reload stays there, a good probe brings it back', async () => {
  const { proxy, dev } = stack;
  const { context, sent } = await newContext(stack.browser);
  try {
    proxy.state.mode = 'down';
    const logStart = proxy.state.log.length;
    const page = await context.newPage();
    // The probe interval is shortened through the script tag (data-probe-interval).
    const url = proxy.page('?failover=1&probe=1500');
    await loadTracked(page, url);
    const sid = await sidOf(page);
    await page.click('#phone');

    await eventually(async () => (await countByType(sid)).phone_click === 1, 'the phone click through the failover');
    // fetch attempts (beacons aside: their outcome is unknown, they count for nothing)
    const attempts = await eventually(() => {
      const a = sent
        .filter((r) => r.type === 'fetch' && r.method === 'POST' && r.body.events.some((x) => x.type === 'phone_click'))
        .map((r) => [r.url === dev.api ? 'failover' : 'primary', r.body.channel, r.body.failures]);
      return a.some(([via]) => via === 'failover') && a;
    }, "the browser's record of the request through the failover");
    assert.deepEqual(
      attempts,
      [
        ['primary', 'primary', 0],
        ['primary', 'primary', 0],
        ['primary', 'primary', 0],
        ['failover', 'failover', 0],
      ],
      'exactly three attempts on the primary, then the failover; a 500 is an answer, never reported in failures'
    );
    assert.deepEqual(
      [...new Set(proxy.state.log.slice(logStart).map((e) => e.status))],
      [500],
      'the primary answered nothing but 500 meanwhile'
    );
    const b1 = await breakerOf(page);
    assert.equal(b1.mode, 'failover');
    assert.equal(typeof b1.since, 'number');
    assert.equal(b1.nextProbeAt > b1.since, true);

    // A reload stays on the failover.
    const before = sent.length;
    await loadTracked(page, url);
    await submitForm(page);
    await eventually(async () => (await countByType(sid)).form_submit === 1, 'the form submit through the failover');
    const afterReload = await eventually(() => {
      const a = sent.slice(before).filter((r) => r.method === 'POST');
      return a.some((r) => r.body.events.some((x) => x.type === 'form_submit')) && a;
    }, "the browser's record of the form submit after the reload");
    assert.deepEqual(
      [...new Set(afterReload.map((r) => [r.url === dev.api ? 'failover' : 'primary', r.body.channel].join(' ')))],
      ['failover failover']
    );

    // A probe (GET) while the primary is still down keeps the breaker open.
    const probes = () => proxy.state.log.slice(logStart).filter((e) => e.method === 'GET');
    await eventually(() => probes().length > 0, 'a probe of the primary');
    assert.deepEqual(probes()[0].status, 500);
    const b2 = await breakerOf(page);
    assert.equal(b2.mode, 'failover');
    assert.equal(b2.since, b1.since);

    // The primary recovers: the next probe closes the breaker.
    proxy.state.mode = 'up';
    await eventually(async () => (await breakerOf(page)).mode === 'primary', 'the probe to close the breaker');
    assert.deepEqual(
      [...new Set(probes().map((e) => `${e.mode} ${e.status}`))].sort(),
      ['down 500', 'up 200']
    );
    await submitForm(page);
    await eventually(async () => (await countByType(sid)).form_submit === 2, 'the second form submit through the primary');
    // The proxy records its upstream's status when the answer has passed through
    // it, which can be a moment after the row is stored: wait for it.
    const viaPrimary = await eventually(
      () => proxy.state.log.slice(logStart).find((e) => e.method === 'POST' && e.status === 200 && e.body.events.some((x) => x.type === 'form_submit')),
      "the primary's answer to the second form submit"
    );
    assert.equal(viaPrimary.body.channel, 'primary');

    // Every event landed exactly once, whichever way it went.
    assert.deepEqual(await countByType(sid), { form_submit: 2, pageview: 2, phone_click: 1 });
    await storedAsSent(sent, sid);
    const row = await sessionRow(sid);
    assert.deepEqual([row.pageviews, row.phone_clicks, row.form_submits], [2, 1, 2]);
  } finally {
    proxy.state.mode = 'up';
    await context.close();
  }
});

test('(c) a tab closed with undelivered events: the next page load delivers them', async () => {
  const { proxy } = stack;
  const { context, sent } = await newContext(stack.browser);
  try {
    proxy.state.mode = 'down';
    const first = await context.newPage();
    await loadTracked(first, proxy.page());
    const sid = await sidOf(first);
    await first.click('#phone');
    await first.evaluate(() => window.opsmantik.track('left_behind', { step: 1 }));
    await eventually(() => proxy.state.log.some((e) => e.body && e.body.sid === sid && e.status === 500), 'a failed attempt');
    await first.close({ runBeforeUnload: true });
    const queued = await (async () => {
      const probe = await context.newPage(); // same profile, before the primary is back: read the queue
      await probe.goto(`${proxy.origin}/blank`);
      const q = await probe.evaluate(() => JSON.parse(localStorage.getItem('om_q')));
      await probe.close();
      return q;
    })();
    assert.deepEqual(
      queued.e.filter((e) => e.s === sid).map((e) => e.type).sort(),
      ['custom', 'heartbeat', 'pageview', 'phone_click'],
      'the closed tab left its events queued'
    );
    assert.equal(await sessionRow(sid), undefined, 'nothing reached the database');

    proxy.state.mode = 'up';
    const sentBefore = sent.length;
    const next = await context.newPage();
    await loadTracked(next, proxy.page());
    const nextSid = await sidOf(next);
    assert.notEqual(nextSid, sid, 'a new tab, a new session');
    const counts = await eventually(async () => {
      const c = await countByType(sid);
      return c.phone_click === 1 && c.custom === 1 && c.pageview === 1 && c;
    }, "the closed tab's events");
    assert.deepEqual(counts, { custom: 1, pageview: 1, phone_click: 1 });
    await storedAsSent(sent, sid);
    const atLoad = await eventually(
      () => sent.slice(sentBefore).find((r) => r.body && r.body.sid === sid && r.method === 'POST' && r.type === 'fetch'),
      "the next page's fetch carrying the closed tab's events"
    );
    assert.equal(atLoad.body.events.some((e) => e.type === 'phone_click'), true);
    assert.equal((await sessionRow(sid)).phone_clicks, 1);
    await eventually(async () => (await next.evaluate(() => JSON.parse(localStorage.getItem('om_q')).e.length)) === 0, 'the queue to empty');
  } finally {
    proxy.state.mode = 'up';
    await context.close();
  }
});

test('(d) a hidden tab sends no heartbeat', async () => {
  const { proxy } = stack;
  const { context } = await newContext(stack.browser);
  try {
    // Fake timers in the page: minutes pass at once, no test sleeps.
    await context.clock.install({ time: Date.now() });
    const logStart = proxy.state.log.length;
    const page = await context.newPage();
    await loadTracked(page, proxy.page());
    const sid = await sidOf(page);
    const mine = () =>
      proxy.state.log
        .slice(logStart)
        .filter((e) => e.body && e.body.sid === sid)
        .map((e) => e.body.events.filter((x) => x.type === 'heartbeat').map((x) => x.state));

    await page.keyboard.press('ArrowDown');
    await page.clock.runFor(60000);
    await eventually(() => mine().length === 1, 'the first heartbeat');
    // Its answer must be in before the fake clock jumps, or the jump would time the request out.
    await eventually(() => page.evaluate(() => JSON.parse(localStorage.getItem('om_q')).e.length === 0), 'the answer to the first heartbeat');

    // Headless Chromium reports every tab as visible, whatever its place: the
    // test hides this one the way a browser does, by the property and its event.
    const setVisibility = (state) =>
      page.evaluate((s) => {
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => s });
        Object.defineProperty(document, 'hidden', { configurable: true, get: () => s === 'hidden' });
        document.dispatchEvent(new Event('visibilitychange'));
      }, state);
    await setVisibility('hidden');
    await eventually(() => mine().length === 2, 'the beacon sent on hiding');
    await page.clock.runFor(20 * 60000); // a visible idle tab would beat 3 times in 20 minutes
    await setVisibility('visible');
    await eventually(() => mine().length === 3, () => `the heartbeat on becoming visible (requests so far: ${JSON.stringify(mine())})`);
    assert.deepEqual(mine(), [['active'], ['hidden'], ['active']], 'nothing between hiding and showing');
    const heartbeats = proxy.state.log
      .slice(logStart)
      .filter((e) => e.body && e.body.sid === sid)
      .flatMap((e) => e.body.events.filter((x) => x.type === 'heartbeat'));
    assert.equal(heartbeats[2].ts - heartbeats[1].ts >= 20 * 60000, true);
    // The 20 hidden minutes add no engaged time; the page's clock still runs
    // for the few real milliseconds between showing the tab and its heartbeat.
    const gained = heartbeats[2].active_ms - heartbeats[1].active_ms;
    assert.equal(gained >= 0 && gained < 1000, true, `no engaged time while hidden (gained ${gained} ms)`);
    const row = await eventually(async () => {
      const r = await sessionRow(sid);
      return r && Number(r.engaged_ms) === heartbeats[2].active_ms && r;
    }, 'the engaged time in the session row');
    assert.equal(Number(row.engaged_ms) < 5 * 60000, true);
  } finally {
    await context.close();
  }
});
