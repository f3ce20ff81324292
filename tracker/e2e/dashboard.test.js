'use strict';
// The dashboard (dashboard/src, served at /dashboard by `opsmantik dev`) in
// Debian's Chromium against the real server and PostgreSQL: a site seeded by
// `opsmantik seed`, every number on the page checked against /api/stats for
// the same period and filters, the chart, refetching, a wrong key, an empty
// site, and screenshots for a person to look at (written to a temp folder
// printed in the log; DASHBOARD_README_PNG=path also writes the README's).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { startStack, USER_AGENT } = require('./stack');

let stack;
let shop; // { site, key }
let empty;
const shots = fs.mkdtempSync(path.join(os.tmpdir(), 'opsmantik-dashboard-shots-'));

async function addSite(publicID, timezone) {
  const out = await stack.cli('site', 'add', '--public-id', publicID, '--name', publicID, '--domain', `${publicID}.example`, '--timezone', timezone, '--currency', 'TRY');
  const s = JSON.parse(out);
  assert.ok(s.api_key, 'site add prints an api_key');
  return { site: publicID, key: s.api_key, id: s.id };
}

// conversion writes one Google Ads outbox row as the worker would leave it.
async function conversion(siteId, status, { dryRun = false, code = null, message = null, destination = 'google_ads' } = {}) {
  await stack.pg.query(
    `INSERT INTO conversions (site_id, session_id, destination, click_id_type, click_id, value, currency, converted_at, status,
                              attempts, last_error_code, last_error_message, dry_run, uploaded_at)
     VALUES ($1, $2, $3, 'gclid', $4, 250, 'TRY', now() - interval '2 hours', $5, 1, $6, $7, $8,
             CASE WHEN $5 = 'uploaded' THEN now() END)`,
    [siteId, crypto.randomUUID(), destination, `E2E-${crypto.randomBytes(6).toString('hex')}`, status, code, message, dryRun]
  );
}

test.before(async () => {
  stack = await startStack();
  shop = await addSite('shop1', 'Europe/Istanbul');
  await stack.cli('seed', '--site', 'shop1', '--sessions', '4000', '--days', '90', '--seed', '14');
  empty = await addSite('empty1', 'America/New_York');
  const other = await addSite('other1', 'UTC');
  await conversion(shop.id, 'uploaded');
  await conversion(shop.id, 'uploaded', { dryRun: true });
  await conversion(shop.id, 'pending');
  await conversion(shop.id, 'published');
  await conversion(shop.id, 'failed', { code: 'INVALID_GCLID', message: 'The click id is not valid.' });
  await conversion(shop.id, 'failed', { code: 'INVALID_GCLID', message: 'The click id is not valid.' });
  await conversion(shop.id, 'failed', { code: 'CONVERSION_PRECEDES_CLICK', message: 'The conversion is older than the click.' });
  // Another site's rows never show on shop1's page.
  for (let i = 0; i < 5; i++) await conversion(other.id, 'failed', { code: 'OTHER_SITE', message: 'not yours' });
  console.log(`dashboard screenshots: ${shots}`);
});
test.after(async () => {
  if (stack) await stack.stop();
});

async function api(pathname, site, key, params = {}) {
  const q = new URLSearchParams({ site, ...params });
  for (const [k, v] of [...q]) if (!v) q.delete(k);
  const r = await fetch(`${stack.dev.origin}${pathname}?${q}`, { headers: { Authorization: `Bearer ${key}` } });
  return { status: r.status, body: await r.json() };
}

// open starts a browser profile in a German locale (so that the formatting
// is visibly the browser's) and collects console errors.
async function open(opts = {}) {
  const context = await stack.browser.newContext({ userAgent: USER_AGENT, locale: 'de-DE', viewport: { width: 1280, height: 900 }, ...opts });
  const page = await context.newPage();
  const errors = [];
  const stats = []; // every /api/stats* request the page made
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => r.url().includes('/api/stats') && stats.push(new URL(r.url())));
  return { context, page, errors, stats };
}

async function signIn(page, { site, key }, remember = false) {
  await page.goto(`${stack.dev.origin}/dashboard`);
  await page.fill('#site', site);
  await page.fill('#key', key);
  if (remember) await page.check('#remember');
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('body[data-state=ready]');
}

// changeTo sets a control and waits for the refetch it causes to be drawn.
async function changeTo(page, stats, selector, value) {
  const before = stats.length;
  await page.evaluate(() => (document.body.dataset.state = 'stale'));
  await page.selectOption(selector, value);
  await page.waitForSelector('body[data-state=ready]');
  return stats.slice(before).filter((u) => u.pathname === '/api/stats');
}

// onPage reads every number the page shows, with its exact value and text.
function onPage(page) {
  return page.evaluate(() => {
    const n = new Intl.NumberFormat(undefined);
    const pct = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });
    const dur = (s) => {
      const m = Math.floor(s / 60);
      return m ? `${n.format(m)} min ${n.format(Math.round(s - m * 60))} s` : `${new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 }).format(s)} s`;
    };
    const expectText = { bounce_rate: (v) => pct.format(v), avg_duration_s: dur };
    const totals = {};
    const previous = {};
    for (const e of document.querySelectorAll('#totals [data-metric]')) {
      const key = e.dataset.metric;
      const v = Number(e.dataset.value);
      totals[key] = v;
      if (e.textContent !== (expectText[key] || ((x) => n.format(x)))(v)) throw new Error(`${key} shows ${e.textContent} for ${v}`);
      previous[key] = Number(document.querySelector(`[data-change=${key}]`).dataset.previous);
    }
    const rows = (id) =>
      [...document.querySelectorAll(`#${id} tr[data-row]`)].map((tr) => {
        const s = tr.querySelector('[data-value]');
        if (s.textContent !== n.format(Number(s.dataset.value))) throw new Error(`${id} ${tr.dataset.row} shows ${s.textContent}`);
        return { name: tr.dataset.row, sessions: Number(s.dataset.value), share: Number(tr.querySelector('[data-share]').dataset.share) };
      });
    const canvas = document.querySelector('#chart canvas');
    const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    // Painted in the sessions series' blue (#2563eb), not only axes and grid.
    let drawn = 0;
    let painted = 0;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3]) painted++;
      if (px[i + 3] > 200 && Math.abs(px[i] - 37) < 30 && Math.abs(px[i + 1] - 99) < 30 && Math.abs(px[i + 2] - 235) < 30) drawn++;
    }
    return {
      totals, previous, sources: rows('sources'), devices: rows('devices'),
      points: Number(document.getElementById('chart').dataset.points), drawn, painted,
      from: document.getElementById('range').dataset.from, to: document.getElementById('range').dataset.to,
      served: document.getElementById('served').textContent,
    };
  });
}

const FIGURES = ['sessions', 'qualified_leads', 'conversions', 'converted_sessions', 'bounce_rate', 'avg_duration_s'];

// matchesAPI checks the page against /api/stats for the request it made.
async function matchesAPI(page, req, { site, key } = shop) {
  const shown = await onPage(page);
  const { status, body: a } = await api('/api/stats', site, key, req);
  assert.equal(status, 200);
  assert.equal(shown.from, a.from);
  assert.equal(shown.to, a.to);
  for (const f of FIGURES) assert.equal(shown.totals[f], a.totals[f], `${f} for ${JSON.stringify(req)}`);
  const share = (rows, k) => rows.map((r) => ({ name: r[k], sessions: r.sessions, share: a.totals.sessions ? r.sessions / a.totals.sessions : 0 }));
  assert.deepEqual(shown.sources, share(a.traffic_sources, 'traffic_source'));
  assert.deepEqual(shown.devices, share(a.devices, 'device_type'));
  // The previous period of the same length, right before.
  const days = a.days.length;
  const day = 86400000;
  const iso = (t) => new Date(t).toISOString().slice(0, 10);
  const from0 = Date.parse(`${a.from}T00:00:00Z`);
  const { body: p } = await api('/api/stats', site, key, { traffic_source: req.traffic_source || '', device_type: req.device_type || '', from: iso(from0 - days * day), to: iso(from0 - day) });
  for (const f of FIGURES) assert.equal(shown.previous[f], p.totals[f], `previous ${f}`);
  assert.equal(shown.points, days, 'one chart point per day');
  assert.ok(shown.painted > 1000, `the chart canvas is not blank (${shown.painted} painted pixels)`);
  // A line needs two days with sessions.
  if (days > 1 && a.days.filter((d) => d.sessions).length > 1) assert.ok(shown.drawn > 20, `the sessions line is drawn on the canvas (${shown.drawn} blue pixels)`);
  assert.match(shown.served, /live/);
  return { shown, answer: a };
}

test('a wrong key is refused with a message, and the right one signs in', async () => {
  const { context, page, errors } = await open();
  try {
    await page.goto(`${stack.dev.origin}/dashboard`);
    await page.fill('#site', shop.site);
    await page.fill('#key', 'omk_wrong');
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#signin-error:not([hidden])');
    assert.match(await page.textContent('#signin-error'), /do not match/);
    assert.equal(await page.isVisible('#app'), false);
    assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0);
    // The only console error is the browser's own line for the 401.
    assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
    // By keyboard: type the key and press Enter in the field.
    await page.fill('#key', '');
    await page.focus('#key');
    await page.keyboard.type(shop.key);
    await page.keyboard.press('Enter');
    await page.waitForSelector('body[data-state=ready]');
    assert.ok(await page.evaluate(() => sessionStorage.getItem('opsmantik_dashboard')));
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'not remembered unless asked');
    // Tab reaches the controls, and the focused one is outlined.
    await page.focus('#period');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'source');
    assert.notEqual(await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle), 'none');
  } finally {
    await context.close();
  }
});

test('every number equals /api/stats, for each period and filter, refetched on each change', async () => {
  const { context, page, errors, stats } = await open();
  try {
    await signIn(page, shop);
    const first = await matchesAPI(page, { period: '7d' });
    assert.ok(first.answer.totals.sessions > 0, 'the seeded site has sessions in the last 7 days');
    assert.match(await page.textContent('#range'), /Europe\/Istanbul/);
    for (const period of ['today', '30d', '90d']) {
      const reqs = await changeTo(page, stats, '#period', period);
      assert.ok(reqs.some((u) => u.searchParams.get('period') === period), `switching to ${period} fetched it`);
      await matchesAPI(page, { period });
    }
    const s90 = (await onPage(page)).totals.sessions;
    for (const [sel, param, value] of [['#source', 'traffic_source', 'google_ads'], ['#device', 'device_type', 'mobile']]) {
      const reqs = await changeTo(page, stats, sel, value);
      assert.ok(reqs.length >= 2 && reqs.every((u) => u.searchParams.get(param) === value), `${param}=${value} applies to every request`);
    }
    const filtered = await matchesAPI(page, { period: '90d', traffic_source: 'google_ads', device_type: 'mobile' });
    assert.ok(filtered.shown.totals.sessions < s90, 'the filters narrow the figures');
    assert.deepEqual(filtered.shown.sources.map((r) => r.name), ['google_ads']);
    assert.deepEqual(filtered.shown.devices.map((r) => r.name), ['mobile']);
    // A custom range, typed in.
    await page.selectOption('#source', '');
    await page.waitForSelector('body[data-state=ready]');
    await page.selectOption('#device', '');
    await page.waitForSelector('body[data-state=ready]');
    await page.selectOption('#period', 'custom');
    const to = first.answer.to;
    const from = new Date(Date.parse(`${to}T00:00:00Z`) - 13 * 86400000).toISOString().slice(0, 10);
    await page.fill('#from', from);
    await page.fill('#to', to);
    const before = stats.length;
    await page.evaluate(() => (document.body.dataset.state = 'stale'));
    await page.click('#apply');
    await page.waitForSelector('body[data-state=ready]');
    assert.ok(stats.slice(before).some((u) => u.searchParams.get('from') === from && u.searchParams.get('to') === to));
    await matchesAPI(page, { from, to });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('Google Ads conversion status and the audit show the site\'s own rows only', async () => {
  const { context, page, errors } = await open();
  try {
    await signIn(page, shop);
    const { body: c } = await api('/api/stats/conversions', shop.site, shop.key);
    assert.deepEqual(c.counts, { uploaded: 2, pending: 1, published: 1, failed: 3, dry_run: 1 });
    const shown = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('[data-ads]')].map((e) => [e.dataset.ads, Number(e.dataset.value)])));
    assert.deepEqual(shown, { uploaded: 2, pending: 2, failed: 3, dry_run: 1 });
    const failures = await page.evaluate(() => [...document.querySelectorAll('[data-failure]')].map((e) => e.textContent));
    assert.equal(failures.length, 2);
    assert.match(failures[0], /INVALID_GCLID × 2: The click id is not valid\./);
    assert.match(failures[1], /CONVERSION_PRECEDES_CLICK/);
    assert.doesNotMatch(await page.textContent('#ads'), /OTHER_SITE/);
    assert.match(await page.textContent('#ads'), /dry run/);
    assert.match(await page.textContent('#audit'), /No audit has run for this site yet/);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('an empty site shows how to install the tracker; remember and sign out', async () => {
  const { context, page, errors } = await open();
  try {
    await signIn(page, empty, true);
    await page.waitForSelector('#install:not([hidden])');
    const snippet = await page.textContent('#snippet');
    assert.equal(snippet, `<script async src="${stack.dev.origin}/ux-core.js" data-site="empty1" data-api="${stack.dev.origin}/api/sync"></script>`);
    await matchesAPI(page, { period: '7d' }, empty);
    assert.match(await page.textContent('#range'), /America\/New_York/);
    // Remembered: a new tab of the same profile is signed in.
    assert.ok(await page.evaluate(() => localStorage.getItem('opsmantik_dashboard')));
    const again = await context.newPage();
    await again.goto(`${stack.dev.origin}/dashboard`);
    await again.waitForSelector('body[data-state=ready]');
    assert.equal(await again.textContent('#who'), 'Site empty1');
    await again.click('#signout');
    assert.equal(await again.evaluate(() => sessionStorage.length + localStorage.length), 0);
    assert.equal(await again.isVisible('#signin'), true);
    // Keyboard: the sign-in form is reachable and focus is shown.
    assert.equal(await again.evaluate(() => document.activeElement.id), 'site');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('phone-sized and desktop screenshots', async () => {
  for (const [name, viewport] of [['phone', { width: 390, height: 844 }], ['desktop', { width: 1280, height: 900 }]]) {
    const { context, page, errors } = await open({ viewport, locale: 'en-US' });
    try {
      const t0 = Date.now();
      await signIn(page, shop);
      console.log(`${name}: from opening the page to the figures drawn (sign-in included) ${Date.now() - t0} ms`);
      await changeTo(page, [], '#period', '30d');
      // Nothing sticks out sideways on a phone.
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), `${name}: no horizontal scroll`);
      const file = path.join(shots, `dashboard-${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      console.log(`wrote ${file}`);
      if (name === 'desktop' && process.env.DASHBOARD_README_PNG) {
        await page.screenshot({ path: process.env.DASHBOARD_README_PNG, clip: { x: 0, y: 0, width: 1280, height: 900 } });
        console.log(`wrote ${process.env.DASHBOARD_README_PNG}`);
      }
      assert.ok(fs.statSync(file).size > 10000);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
});
