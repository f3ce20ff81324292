'use strict';
// The tracker's benchmark (`make bench`): its size as browsers get it, and the
// requests it makes per open-tab hour in simulated visits, beside the old fixed
// 60-second heartbeat. The visits run the real tracker/ux-core.js against the
// fake browser of tracker/testkit (fake clock, fake network), so hours of tab
// life take milliseconds and every run gives the same figures.
//
// The old tracker is counted as it behaved: one request at load, one
// heartbeat request every 60 s for as long as the tab is open (visible or
// not), and one request per conversion.

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { Browser, SECOND, MINUTE, HOUR, SOURCE_PATH } = require('../testkit/fakewindow');

const REPO = path.resolve(__dirname, '..', '..');
const SIZE_BUDGET = 3000;
const TARGET_REDUCTION = 70;

function size() {
  const source = fs.readFileSync(SOURCE_PATH);
  const min = execFileSync('go', ['run', './tracker/cmd/ux-core'], { cwd: REPO, maxBuffer: 1 << 24 });
  const gz = zlib.gzipSync(min, { level: 9 }).length;
  return { source: source.length, min: min.length, gz };
}

// Each scenario drives one tab and returns how long it was open and the
// conversions its visitor made.
const scenarios = [
  {
    name: 'reader active for 10 min',
    async run(b) {
      const p = b.open();
      let conversions = 0;
      for (let t = 15 * SECOND; t <= 10 * MINUTE; t += 15 * SECOND) {
        await b.clock.advance(15 * SECOND);
        p.scrollTo(t / 200);
        if (t === 5 * MINUTE) (p.click({ href: 'tel:+905551112233' }), conversions++);
      }
      p.close();
      return { page: p, openMs: 10 * MINUTE, conversions };
    },
  },
  {
    name: 'tab left idle for 2 h',
    async run(b) {
      const p = b.open();
      await b.clock.advance(30 * SECOND);
      p.submit({ id: 'contact' });
      await b.clock.advance(2 * HOUR - 30 * SECOND);
      p.close();
      return { page: p, openMs: 2 * HOUR, conversions: 1 };
    },
  },
  {
    name: 'background tab for 8 h',
    async run(b) {
      const p = b.open();
      await b.clock.advance(20 * SECOND);
      p.click({ href: 'https://wa.me/905551112233' });
      await b.clock.advance(25 * SECOND);
      p.hide(); // the visitor went to another tab and left this one open
      await b.clock.advance(8 * HOUR - 45 * SECOND);
      p.close();
      return { page: p, openMs: 8 * HOUR, conversions: 1 };
    },
  },
  {
    name: 'mobile visit, hidden and shown every 3 min',
    async run(b) {
      const p = b.open();
      let conversions = 0;
      for (let round = 0; round < 5; round++) {
        for (let t = 0; t < 3 * MINUTE; t += 20 * SECOND) {
          await b.clock.advance(20 * SECOND);
          p.scrollTo(round * 300 + t / 1000);
        }
        if (round === 1) (p.click({ href: 'tel:+905551112233' }), conversions++);
        if (round === 3) (p.click({ href: 'https://wa.me/905551112233' }), conversions++);
        p.hide();
        await b.clock.advance(3 * MINUTE);
        if (round < 4) p.show();
      }
      p.close();
      return { page: p, openMs: 30 * MINUTE, conversions };
    },
  },
];

const CONVERSIONS = new Set(['phone_click', 'whatsapp_click', 'form_submit']);

// play runs a scenario, then (as a later visit to the site would) loads one
// more page, which delivers whatever the tab left queued.
async function play(scenario, { failEvery = 0 } = {}) {
  const b = new Browser();
  b.random = () => 0.5;
  let n = 0;
  b.net.handler = (r) => ({ status: failEvery && r.method === 'POST' && ++n % failEvery === 0 ? 503 : 200 });
  const { page, openMs, conversions } = await scenario.run(b);
  const requests = b.net.log.filter((r) => r.page === page).length;
  await b.clock.advance(HOUR);
  b.net.handler = () => ({ status: 200 });
  b.open();
  await b.clock.advance(MINUTE);
  const stored = b.net.storedEvents().filter((e) => CONVERSIONS.has(e.type)).length;
  const old = 1 + Math.floor(openMs / MINUTE) + conversions;
  return { requests, openMs, conversions, stored, old };
}

const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
const perHour = (count, ms) => (count / (ms / HOUR)).toFixed(1);

async function main() {
  let failed = false;
  const s = size();
  const sizeOk = s.gz <= SIZE_BUDGET;
  failed ||= !sizeOk;
  console.log(`tracker size: source ${s.source} B, minified ${s.min} B, minified+gzip ${s.gz} B (budget ${SIZE_BUDGET} B: ${sizeOk ? 'ok' : 'OVER'})`);
  console.log('');
  console.log('requests per open tab (fetch, beacon and probe alike), simulated with the real tracker:');
  console.log(`  ${pad('scenario', 46)}${lpad('open', 7)}${lpad('old 60 s', 10)}${lpad('adaptive', 10)}${lpad('old/h', 8)}${lpad('new/h', 8)}`);
  let oldTotal = 0;
  let newTotal = 0;
  let lost = 0;
  for (const sc of scenarios) {
    const r = await play(sc);
    oldTotal += r.old;
    newTotal += r.requests;
    lost += r.conversions - r.stored;
    const open = r.openMs >= HOUR ? `${r.openMs / HOUR} h` : `${r.openMs / MINUTE} min`;
    console.log(`  ${pad(sc.name, 46)}${lpad(open, 7)}${lpad(r.old, 10)}${lpad(r.requests, 10)}${lpad(perHour(r.old, r.openMs), 8)}${lpad(perHour(r.requests, r.openMs), 8)}`);
  }
  const reduction = 100 * (1 - newTotal / oldTotal);
  const reductionOk = reduction >= TARGET_REDUCTION;
  failed ||= !reductionOk;
  console.log(
    `  ${pad('all scenarios together', 46)}${lpad('', 7)}${lpad(oldTotal, 10)}${lpad(newTotal, 10)}   reduction ${reduction.toFixed(1)} % (target ≥ ${TARGET_REDUCTION} %: ${reductionOk ? 'ok' : 'MISSED'})`
  );

  // The same visits with the ingest endpoint failing one request in three.
  let made = 0;
  let stored = 0;
  for (const sc of scenarios) {
    const ok = await play(sc);
    const flaky = await play(sc, { failEvery: 3 });
    made += ok.conversions + flaky.conversions;
    stored += ok.stored + flaky.stored;
  }
  lost += made - stored;
  failed ||= made !== stored;
  console.log('');
  console.log(
    `conversions: ${made} made in these visits (half of them with one request in three failing), ${stored} stored: ${made === stored ? 'none lost' : `${made - stored} LOST`}`
  );
  if (failed) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
