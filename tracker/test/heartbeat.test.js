'use strict';
// Adaptive heartbeat (PROTOCOL.md): timing in each state and each transition,
// and the cumulative values it carries.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Browser, START, SECOND, MINUTE, HOUR } = require('../testkit/fakewindow');

// beats lists every heartbeat the server was sent (each once, beacons
// included) as [seconds since START, state].
function beats(net) {
  const seen = new Map();
  for (const e of net.sentEvents('heartbeat')) if (!seen.has(e.id)) seen.set(e.id, [(e.ts - START) / SECOND, e.state]);
  return [...seen.values()].sort((a, b) => a[0] - b[0]);
}

const fetchTimes = (net) => net.requests({ kind: 'fetch', method: 'POST' }).map((r) => (r.at - START) / SECOND);

test('an active reader gets a heartbeat every 60 s, each in its own request', async () => {
  const b = new Browser();
  const p = b.open();
  for (let t = 0; t < 10 * MINUTE; t += 30 * SECOND) {
    await b.clock.advance(30 * SECOND);
    p.scrollTo(t / 100);
  }
  await b.clock.advance(0);
  const want = Array.from({ length: 10 }, (_, i) => [60 * (i + 1), 'active']);
  assert.deepEqual(beats(b.net), want);
  assert.deepEqual(fetchTimes(b.net), want.map(([s]) => s));
});

test('an idle tab backs off to 2, 5, then 10 minutes and stays at 10', async () => {
  const b = new Browser();
  b.open();
  await b.clock.advance(HOUR);
  // Loading counts as an interaction: the first beat is still active.
  assert.deepEqual(beats(b.net), [
    [60, 'active'],
    [120, 'idle'],
    [240, 'idle'], // +2 min
    [540, 'idle'], // +5 min
    [1140, 'idle'], // +10 min
    [1740, 'idle'],
    [2340, 'idle'],
    [2940, 'idle'],
    [3540, 'idle'],
  ]);
});

test('an interaction while idle returns to active within a minute and restarts the back-off', async () => {
  const b = new Browser();
  const p = b.open();
  await b.clock.advance(20 * MINUTE); // beats at 60, 120, 240, 540, 1140; next due at 1740
  p.key();
  await b.clock.advance(10 * MINUTE);
  assert.deepEqual(beats(b.net).slice(5), [
    [1260, 'active'], // a minute after the key press, not at 1740
    [1320, 'idle'],
    [1440, 'idle'], // +2 min: the back-off starts again
    [1740, 'idle'], // +5 min
  ]);
});

test('an interaction while active does not move the next beat', async () => {
  const b = new Browser();
  const p = b.open();
  await b.clock.advance(50 * SECOND);
  p.scrollTo(100);
  await b.clock.advance(10 * SECOND);
  assert.deepEqual(beats(b.net), [[60, 'active']]);
});

test('a hidden tab sends no heartbeat; becoming visible sends one at once and resumes the schedule', async () => {
  const b = new Browser();
  const p = b.open();
  await b.clock.advance(90 * SECOND); // beat at 60
  p.hide(); // 90 s
  const beacons = p.requests({ kind: 'beacon' });
  assert.equal(beacons.length, 1, 'becoming hidden flushes the queue with one beacon');
  assert.deepEqual(
    beacons[0].body.events.map((e) => [e.type, e.state]),
    [['heartbeat', 'hidden']],
    'the beacon carries the heartbeat with the engagement up to hiding'
  );
  const before = b.net.log.length;
  await b.clock.advance(25 * MINUTE);
  assert.equal(b.net.log.length, before, 'nothing is sent while hidden');
  assert.deepEqual(p.timers().filter((t) => t > 0), [], 'no heartbeat timer is left running');

  p.show(); // 90 s + 25 min = 1590 s
  await b.clock.advance(0);
  assert.deepEqual(beats(b.net).slice(-1), [[1590, 'active']], 'one beat on becoming visible');
  await b.clock.advance(3 * MINUTE);
  assert.deepEqual(beats(b.net).slice(-3), [
    [1590, 'active'],
    [1650, 'active'],
    [1710, 'idle'],
  ]);
});

test('a tab opened in the background sends nothing until it is shown', async () => {
  const b = new Browser();
  const p = b.open({ visibility: 'hidden' });
  await b.clock.advance(20 * MINUTE);
  assert.equal(b.net.log.length, 0);
  p.show();
  await b.clock.advance(0);
  const [req] = b.net.log;
  assert.equal(b.net.log.length, 1);
  assert.deepEqual(
    req.body.events.map((e) => [e.type, e.state, (e.ts - START) / MINUTE]),
    [
      ['pageview', undefined, 0],
      ['heartbeat', 'active', 20],
    ]
  );
});

test('heartbeats carry cumulative engaged time and the deepest scroll of the page', async () => {
  const b = new Browser();
  // 800 px of a 4,000 px page are visible: 20 % on load.
  const p = b.open();
  await b.clock.advance(10 * SECOND);
  p.scrollTo(1200); // 50 %
  await b.clock.advance(10 * SECOND);
  p.scrollTo(0); // last interaction at 20 s; back to the top keeps 50 %
  await b.clock.advance(40 * SECOND); // beat at 60
  await b.clock.advance(60 * SECOND); // beat at 120, idle: engaged until 20 s + 60 s
  await b.clock.advance(30 * SECOND);
  p.hide(); // 150 s: no engagement since 80 s
  await b.clock.advance(50 * SECOND);
  p.show(); // 200 s: counts as an interaction
  await b.clock.advance(60 * SECOND); // beat at 260
  const hb = b.net.sentEvents('heartbeat').map((e) => [(e.ts - START) / SECOND, e.state, e.active_ms, e.scroll]);
  assert.deepEqual(hb, [
    [60, 'active', 60000, 50],
    [120, 'idle', 80000, 50],
    [150, 'hidden', 80000, 50],
    [200, 'active', 80000, 50],
    [260, 'active', 140000, 50],
  ]);
});

test('engaged time keeps adding up across a reload in the same tab', async () => {
  const b = new Browser();
  let p = b.open();
  for (let i = 0; i < 3; i++) {
    await b.clock.advance(30 * SECOND);
    p.key();
  }
  p = p.reload(); // at 90 s: the same session
  await b.clock.advance(60 * SECOND);
  const hb = b.net.sentEvents('heartbeat').map((e) => [(e.ts - START) / SECOND, e.state, e.active_ms]);
  assert.deepEqual(hb.slice(-2), [
    [90, 'hidden', 90000],
    [150, 'active', 150000],
  ]);
  const sids = new Set(b.net.posts().map((r) => r.body.sid));
  assert.equal(sids.size, 1);
});

test('a beforeunload that unloads nothing (Chrome fires one for tel: links) pauses the heartbeat until the next interaction', async () => {
  const b = new Browser();
  const p = b.open();
  await b.clock.advance(30 * SECOND);
  p.window.emit('beforeunload'); // the page stays, visible
  assert.equal(p.requests({ kind: 'beacon' }).length, 1, 'the queue went out by beacon, as for an unload');
  await b.clock.advance(5 * MINUTE);
  assert.deepEqual(beats(b.net), [[30, 'hidden']]);
  p.key(); // at 330 s
  await b.clock.advance(60 * SECOND);
  assert.deepEqual(beats(b.net), [
    [30, 'hidden'],
    [330, 'active'], // at once: the tab is in use again
    [390, 'active'],
  ]);
});
