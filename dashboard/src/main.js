// The OpsMantik dashboard: signs in with a site's public id and API key and
// draws /api/stats (docs/stats-api.md) for a period and filters, with the
// Google Ads outbox and the latest audit beside it. No framework; uPlot draws
// the daily chart.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';

const $ = (id) => document.getElementById(id);
const STORE = 'opsmantik_dashboard';
const API = '/api/stats';

const num = new Intl.NumberFormat(undefined);
const pct = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });
const chg = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1, signDisplay: 'exceptZero' });
const dec = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

const LABELS = {
  google_ads: 'Google Ads', paid: 'Other paid', organic_search: 'Organic search', social: 'Social',
  referral: 'Referral', direct: 'Direct', mobile: 'Mobile', tablet: 'Tablet', desktop: 'Desktop', unknown: 'Unknown',
};
const TOTALS = [
  ['sessions', 'Sessions', num],
  ['qualified_leads', 'Qualified leads', num],
  ['conversions', 'Conversions', num],
  ['converted_sessions', 'Converted sessions', num],
  ['bounce_rate', 'Bounce rate', pct],
  ['avg_duration_s', 'Average duration', null],
];

let creds = null;
let chart = null;
let seq = 0;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  e.append(...kids.filter((k) => k != null));
  return e;
}

function duration(s) {
  const m = Math.floor(s / 60);
  const r = Math.round(s - m * 60);
  return m ? `${num.format(m)} min ${num.format(r)} s` : `${dec.format(s)} s`;
}

// fmtValue formats a figure; the element keeps the exact number in data-value.
function figure(key, value, fmt) {
  return el('span', { class: 'n', 'data-metric': key, 'data-value': String(value), text: fmt ? fmt.format(value) : duration(value) });
}

function loadCreds() {
  for (const s of [sessionStorage, localStorage]) {
    try {
      const c = JSON.parse(s.getItem(STORE) || 'null');
      if (c && c.site && c.key) return c;
    } catch (e) { /* a damaged entry is no sign-in */ }
  }
  return null;
}

class HTTPError extends Error {
  constructor(status, body) {
    super(body.detail || body.error || `HTTP ${status}`);
    this.status = status;
  }
}

async function get(path, params) {
  const q = new URLSearchParams({ site: creds.site, ...params });
  for (const [k, v] of [...q]) if (!v) q.delete(k);
  const res = await fetch(`${path}?${q}`, { headers: { Authorization: `Bearer ${creds.key}` } });
  let body;
  try {
    body = await res.json();
  } catch (e) {
    body = { error: `HTTP ${res.status}` };
  }
  if (!res.ok || !body.ok) throw new HTTPError(res.status, body);
  return body;
}

// Calendar arithmetic on site-local dates, done in UTC (no clock changes).
const day = (s) => Date.parse(`${s}T00:00:00Z`);
const iso = (t) => new Date(t).toISOString().slice(0, 10);
const DAY = 86400000;

function request() {
  const p = $('period').value;
  const r = { traffic_source: $('source').value, device_type: $('device').value };
  if (p === 'custom') return { ...r, from: $('from').value, to: $('to').value };
  return { ...r, period: p };
}

function signedIn(c) {
  creds = c;
  $('signin').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = false;
  $('who').hidden = false;
  $('who').textContent = `Site ${c.site}`;
}

function signOut() {
  sessionStorage.removeItem(STORE);
  localStorage.removeItem(STORE);
  creds = null;
  if (chart) chart.destroy();
  chart = null;
  $('app').hidden = true;
  $('signout').hidden = true;
  $('who').hidden = true;
  $('key').value = '';
  $('signin').hidden = false;
  $('site').focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const c = { site: $('site').value.trim(), key: $('key').value.trim() };
  const err = $('signin-error');
  err.hidden = true;
  creds = c;
  try {
    await get(API, { period: 'today' });
  } catch (e) {
    creds = null;
    err.textContent = e.status === 401 ? 'That site id and API key do not match. Check both, or make a new key with opsmantik site rotate-key.' : `Could not sign in: ${e.message}`;
    err.hidden = false;
    return;
  }
  (($('remember').checked) ? localStorage : sessionStorage).setItem(STORE, JSON.stringify(c));
  signedIn(c);
  refresh();
}

async function refresh() {
  const mine = ++seq;
  const req = request();
  const errBox = $('load-error');
  errBox.hidden = true;
  document.body.dataset.state = 'loading';
  try {
    const [cur, ads, audit] = await Promise.all([get(API, req), get(`${API}/conversions`, {}), get(`${API}/audit`, {})]);
    const n = (day(cur.to) - day(cur.from)) / DAY + 1;
    const prevReq = { traffic_source: req.traffic_source, device_type: req.device_type,
      from: iso(day(cur.from) - n * DAY), to: iso(day(cur.from) - DAY) };
    const prev = await get(API, prevReq);
    if (mine !== seq) return;
    render(cur, prev, ads, audit, n);
    document.body.dataset.state = 'ready';
  } catch (e) {
    if (mine !== seq) return;
    if (e.status === 401) {
      signOut();
      $('signin-error').textContent = 'The API key no longer works (it may have been rotated). Sign in again.';
      $('signin-error').hidden = false;
      return;
    }
    errBox.textContent = `Could not load the figures: ${e.message}`;
    errBox.hidden = false;
    document.body.dataset.state = 'error';
  }
}

function render(cur, prev, ads, audit, n) {
  const dates = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });
  $('range').textContent = `${dates.format(day(cur.from))} – ${dates.format(day(cur.to))} (${num.format(n)} ${n === 1 ? 'day' : 'days'}), time zone ${cur.timezone}; compared with ${dates.format(day(prev.from))} – ${dates.format(day(prev.to))}`;
  $('range').dataset.from = cur.from;
  $('range').dataset.to = cur.to;

  $('totals').replaceChildren(...TOTALS.map(([key, label, fmt]) => {
    const v = cur.totals[key];
    const p = prev.totals[key];
    let c = '—';
    let cls = 'quiet';
    if (p) {
      const r = (v - p) / p;
      c = `${chg.format(r)} vs previous`;
      const better = key === 'bounce_rate' ? r < 0 : r > 0;
      cls = r === 0 ? 'quiet' : better ? 'up' : 'down';
    } else if (v) c = 'new vs previous';
    return el('li', { 'data-total': key }, el('span', { text: label }), figure(key, v, fmt),
      el('span', { class: `small ${cls}`, 'data-change': key, 'data-previous': String(p), text: c }));
  }));

  const empty = !cur.totals.sessions && !prev.totals.sessions && !req_filtered();
  $('install').hidden = !empty;
  if (empty) {
    // The deployment may name where the tracker and the sync endpoint live
    // (DASHBOARD_TRACKER_URL, DASHBOARD_SYNC_URL); opsmantik dev serves both
    // on the page's own origin.
    const meta = (n) => document.querySelector(`meta[name="${n}"]`)?.content;
    const o = location.origin;
    const src = meta('om-tracker-url') || `${o}/ux-core.js`, api = meta('om-sync-url') || `${o}/api/sync`;
    $('snippet').textContent = `<script async src="${src}" data-site="${creds.site}" data-api="${api}"></script>`;
  }

  drawChart(cur.days);
  share($('sources'), cur.traffic_sources, 'traffic_source', 'Source', cur.totals.sessions);
  share($('devices'), cur.devices, 'device_type', 'Device', cur.totals.sessions);
  renderAds(ads);
  renderAudit(audit);

  const sf = cur.served_from;
  const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', timeZone: cur.timezone });
  const parts = [];
  if (sf.view_days) parts.push(`${num.format(sf.view_days)} past ${sf.view_days === 1 ? 'day' : 'days'} from the daily view refreshed ${sf.view_refreshed_at ? time.format(new Date(sf.view_refreshed_at)) : 'never'}`);
  // A named period ends today, which is always read live.
  const today = $('period').value !== 'custom';
  if (sf.live_days === 1 && today) parts.push('today live');
  else if (sf.live_days) parts.push(`${num.format(sf.live_days)} ${sf.live_days === 1 ? 'day' : 'days'} live${today ? ', today included' : ''}`);
  $('served').textContent = `Data: ${parts.join(', ')}.`;
}

const req_filtered = () => $('source').value || $('device').value;

function drawChart(days) {
  const box = $('chart');
  const xs = days.map((d) => day(d.date) / 1000);
  const data = [xs, days.map((d) => d.sessions), days.map((d) => d.conversions)];
  const width = Math.max(280, box.clientWidth);
  const long = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });
  const short = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
  const opts = {
    width, height: 260,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    scales: { x: { time: true } },
    series: [
      { label: 'Day', value: (u, v) => (v == null ? '' : long.format(v * 1000)) },
      { label: 'Sessions', stroke: '#2563eb', width: 2, fill: 'rgba(37,99,235,.08)', value: (u, v) => (v == null ? '' : num.format(v)), points: { show: days.length <= 31 } },
      { label: 'Conversions', stroke: '#d9480f', width: 2, scale: 'conv', value: (u, v) => (v == null ? '' : num.format(v)), points: { show: days.length <= 31 } },
    ],
    axes: [{ incrs: [1, 2, 7, 14, 28, 56].map((n) => n * 86400), values: (u, vs) => vs.map((v) => short.format(v * 1000)) }, { values: (u, vs) => vs.map((v) => num.format(v)) }, { side: 1, scale: 'conv', grid: { show: false }, values: (u, vs) => vs.map((v) => num.format(v)) }],
  };
  if (chart) chart.destroy();
  box.replaceChildren();
  chart = new uPlot(opts, data, box);
  box.dataset.points = String(chart.data[0].length);
}

function share(table, rows, key, head, total) {
  const pctOf = (s) => (total ? s / total : 0);
  table.replaceChildren(
    el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: head }), el('th', { scope: 'col', text: 'Sessions' }), el('th', { scope: 'col', text: 'Share' }), el('th', { class: 'barcell', scope: 'col' }, el('span', { class: 'sr', text: 'Bar' })))),
    el('tbody', {}, ...(rows.length ? rows.map((r) => el('tr', { 'data-row': r[key] },
      el('td', { text: LABELS[r[key]] || r[key] }),
      el('td', { 'data-value': String(r.sessions), text: num.format(r.sessions) }),
      el('td', { 'data-share': String(pctOf(r.sessions)), text: pct.format(pctOf(r.sessions)) }),
      el('td', { class: 'barcell', 'aria-hidden': 'true' }, el('div', { class: 'meter', style: `width:${(pctOf(r.sessions) * 100).toFixed(1)}%` })))) :
      [el('tr', {}, el('td', { colspan: '4', class: 'quiet', text: 'No sessions in this period.' }))]))
  );
}

function renderAds(a) {
  const c = a.counts;
  const box = $('ads');
  const stat = (k, label, v) => el('li', {}, el('span', { text: `${label} ` }), el('strong', { 'data-ads': k, 'data-value': String(v), text: num.format(v) }));
  const kids = [el('ul', { class: 'plain' }, stat('uploaded', 'Uploaded', c.uploaded), stat('pending', 'Pending', c.pending + c.published),
    stat('failed', 'Failed', c.failed), c.dry_run ? stat('dry_run', 'Dry runs (validate only, not recorded by Google Ads)', c.dry_run) : null)];
  if (a.failures.length) {
    kids.push(el('h3', { class: 'small', text: 'Why uploads failed' }), el('ul', {}, ...a.failures.map((f) =>
      el('li', { 'data-failure': f.code }, el('code', { text: f.code }), ` × ${num.format(f.count)}: ${f.message}`))));
  }
  if (!c.uploaded && !c.pending && !c.published && !c.failed) {
    kids.push(el('p', { class: 'quiet', text: 'No Google Ads conversions yet: they appear when a visit with a click id (gclid, wbraid, gbraid) becomes a qualified lead.' }));
  } else if (a.recent.length) {
    const t = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'short' });
    kids.push(el('table', {}, el('thead', {}, el('tr', {}, el('th', { text: 'Converted' }), el('th', { text: 'Value' }), el('th', { text: 'Status' }))),
      el('tbody', {}, ...a.recent.slice(0, 8).map((r) => el('tr', {},
        el('td', { text: t.format(new Date(r.converted_at)) }),
        el('td', { text: new Intl.NumberFormat(undefined, { style: 'currency', currency: r.currency }).format(r.value) }),
        el('td', {}, el('span', { class: r.status === 'failed' ? 'tag bad' : 'tag', text: r.status }), r.dry_run ? ' ' : null, r.dry_run ? el('span', { class: 'tag', text: 'dry run' }) : null))))));
  }
  box.replaceChildren(...kids);
}

function renderAudit(a) {
  const box = $('audit');
  if (!a.run) {
    box.replaceChildren(el('p', { class: 'quiet', 'data-audit': 'none', text: 'No audit has run for this site yet.' }));
    return;
  }
  const t = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const kids = [el('p', { class: 'quiet small', text: `Latest run ${t.format(new Date(a.run.finished_at))} (${a.run.status}), alarm above ${dec.format(a.run.threshold_percent)} %.` })];
  kids.push(a.findings.length ? el('ul', {}, ...a.findings.map((f) => el('li', { 'data-finding': f.code },
    el('span', { class: f.alarm ? 'tag bad' : 'tag', text: f.code }), ` ${f.name}: ${num.format(f.count)} of ${num.format(f.denominator)} (${dec.format(f.ratio_percent)} %)`)))
    : el('p', { 'data-audit': 'clean', text: 'Nothing found: the data looks healthy.' }));
  box.replaceChildren(...kids);
}

function init() {
  $('signin').addEventListener('submit', signIn);
  $('signout').addEventListener('click', signOut);
  $('period').addEventListener('change', () => {
    const custom = $('period').value === 'custom';
    document.querySelectorAll('.custom').forEach((e) => (e.hidden = !custom));
    if (custom) {
      const to = $('range').dataset.to || iso(Date.now());
      if (!$('to').value) $('to').value = to;
      if (!$('from').value) $('from').value = iso(day(to) - 29 * DAY);
      $('from').focus();
    } else refresh();
  });
  $('controls').addEventListener('submit', (ev) => { ev.preventDefault(); refresh(); });
  $('source').addEventListener('change', refresh);
  $('device').addEventListener('change', refresh);
  let resize;
  window.addEventListener('resize', () => {
    clearTimeout(resize);
    resize = setTimeout(() => chart && chart.setSize({ width: Math.max(280, $('chart').clientWidth), height: 260 }), 100);
  });
  const c = loadCreds();
  if (c) {
    signedIn(c);
    refresh();
  } else {
    $('signin').hidden = false;
    const site = new URLSearchParams(location.search).get('site');
    if (site) $('site').value = site;
    (site ? $('key') : $('site')).focus();
  }
}

init();
