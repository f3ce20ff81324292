/*
 * OpsMantik tracker: the browser half of shared/docs/PROTOCOL.md (version 1).
 *
 *   <script async src="/ux-core.js" data-site="PUBLIC_ID"
 *           data-api="https://…/sync" data-failover-api="https://…/sync"></script>
 *
 * It records pageviews (including SPA navigation and back-forward cache
 * restores), phone, WhatsApp and form conversions and custom events, keeps them
 * in a localStorage queue until the server has them, and sends them in batches
 * with an adaptive heartbeat. A circuit breaker moves traffic to the failover
 * endpoint when the primary keeps failing.
 *
 * The whole script is one function of `window`. Tests evaluate this file with
 * Node's vm against a fake window and clock (tracker/testkit), so no test hook
 * exists in real pages: the only global it adds is `window.opsmantik`.
 * Every callback the browser calls goes through guard(): nothing the tracker
 * does can throw into the host page.
 */
(function (w) {
  'use strict';

  // A second copy of the script on the same page does nothing.
  if (w.opsmantik) return;

  const guard = (fn) =>
    function () {
      try {
        return fn.apply(this, arguments);
      } catch (e) {
        // never break the host page
      }
    };

  guard(start)();

  function start() {
    const d = w.document;
    const nav = w.navigator;
    const loc = w.location;
    const tag = d.currentScript || d.querySelector('script[data-site]');
    const data = tag?.dataset || {};
    // The configuration (CONFIG.siteId, CONFIG.apiUrl, CONFIG.failoverApiUrl in
    // PROTOCOL.md) as plain constants, so that the minifier can shorten them.
    const siteId = data.site;
    const apiUrl = data.api;
    const failoverApiUrl = data.failoverApi;
    // data-probe-interval (milliseconds) exists so that tests need not wait ten
    // minutes for the breaker's probe of the primary; real pages leave it out.
    const probeMs = +data.probeInterval || 6e5;
    if (!siteId || !apiUrl) return;

    // Figures used in more than one place; the others are written where they
    // are used, with a comment.
    const ACTIVE_MS = 6e4; // an interaction this recent (one minute) means "active"
    const IDLE_STEPS = [12e4, 3e5, 6e5]; // heartbeat back-off while idle: 2, 5, 10 minutes
    // The conversion types (phone_click, whatsapp_click, form_submit) are the
    // only ones with an underscore.
    const conversion = (type) => /_/.test(type);
    const URL_FIELDS = 'gclid wbraid gbraid utm_source utm_medium utm_campaign utm_term utm_content'.split(' ');

    const now = () => Date.now();

    // store wraps localStorage or sessionStorage; without it (private modes,
    // blocked storage, a full quota) a key lives in memory for the page's life.
    // get gives null or undefined for a missing or unreadable value.
    function store(name) {
      const mem = {};
      let s;
      try {
        s = w[name];
      } catch (e) {}
      return {
        get(k) {
          try {
            return JSON.parse(k in mem ? mem[k] : s.getItem(k));
          } catch (e) {}
        },
        set(k, v) {
          v = JSON.stringify(v);
          try {
            if (k in mem) throw 0;
            s.setItem(k, v);
          } catch (e) {
            mem[k] = v;
          }
        },
      };
    }
    const local = store('localStorage');
    const tab = store('sessionStorage');

    // A v4 UUID: crypto's where the page is a secure context, else from Math.random.
    function uuid() {
      return (
        w.crypto?.randomUUID?.() ||
        '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (x) => (x ^ ((Math.random() * 16) >> (x / 4))).toString(16))
      );
    }

    let vid = local.get('om_vid');
    if (!vid) local.set('om_vid', (vid = uuid()));

    // ---- sessions and landing context ----------------------------------------

    function params() {
      const p = new URLSearchParams(loc.search);
      const o = {};
      URL_FIELDS.forEach((k) => (o[k] = p.get(k)));
      return o;
    }

    function context(p) {
      const scr = w.screen;
      return {
        url: loc.href,
        referrer: d.referrer || null,
        ...p,
        lang: nav.language,
        tz: Intl.DateTimeFormat().resolvedOptions().timeZone,
        sw: scr.width,
        sh: scr.height,
        touch: nav.maxTouchPoints, // an iPad that sends a desktop User-Agent has touch points, a Mac has none
      };
    }

    // The session lives in sessionStorage: one tab, one session, across reloads.
    let session = tab.get('om_s');

    // renew starts a new session for an event of `type` (none for an
    // interaction) when there is none, when the session's last activity
    // (session.last: an interaction or an event other than a heartbeat) is
    // over 30 minutes old, or, on a pageview, when a new ad click id arrives.
    // A heartbeat never starts one: an idle tab's beats keep no session alive,
    // and they go to the session they measure until the next activity.
    function renew(type) {
      const p = params();
      const click = p.gclid || p.wbraid || p.gbraid;
      if (!session?.id || (type !== 'heartbeat' && now() - session.last > 18e5) || (type === 'pageview' && click && click !== session.click)) {
        session = { id: uuid(), last: now(), ms: 0, click, ctx: context(p) };
        // A session starts with a pageview of the current page.
        if (type !== 'pageview') pageview();
      }
    }

    // ---- engagement ----------------------------------------------------------

    let hidden = d.visibilityState === 'hidden';
    let lastAct = now(); // loading the page counts as an interaction
    let mark = lastAct; // engaged time is counted up to here
    let depth = 0; // deepest scroll % on the current page
    let page = ''; // the current page's URL without its hash

    // account adds the engaged time since the last call: visible, and within a
    // minute of an interaction.
    function account() {
      const t = now();
      if (!hidden) session.ms += Math.max(0, Math.min(t, lastAct + ACTIVE_MS) - mark);
      mark = t;
    }

    function measure() {
      const h = d.documentElement.scrollHeight;
      if (h) depth = Math.max(depth, Math.min(100, Math.round(((w.scrollY + w.innerHeight) / h) * 100)));
    }

    // ---- the queue -------------------------------------------------------------
    // localStorage "om_q" = {c: {sid: ctx}, e: [event + {s: sid}]}, oldest first.
    // It is shared by the site's tabs, so it is always read, changed and written
    // in one go, never cached.

    function loadQueue() {
      const q = local.get('om_q');
      return q?.e ? q : { c: {}, e: [] };
    }

    function saveQueue(q) {
      const c = {};
      q.e.forEach((e) => (c[e.s] = q.c[e.s]));
      q.c = c;
      local.set('om_q', q);
    }

    function remove(ids) {
      const q = loadQueue();
      q.e = q.e.filter((e) => !ids.includes(e.id));
      saveQueue(q);
    }

    function push(type, fields) {
      renew(type);
      const t = now();
      if (type !== 'heartbeat') session.last = t;
      const ev = { id: uuid(), type, ts: t, url: loc.href, ...fields, s: session.id };
      tab.set('om_s', session);
      const q = loadQueue();
      q.c[session.id] = session.ctx;
      // Heartbeat values are cumulative: a newer one for the same page replaces the older.
      if (type === 'heartbeat') q.e = q.e.filter((e) => !(e.type === type && e.s === ev.s && e.url === ev.url));
      q.e.push(ev);
      if (q.e.length > 300) {
        // Full (the queue keeps 300 events): the oldest non-conversion event goes first.
        const i = q.e.findIndex((e) => !conversion(e.type));
        q.e.splice(Math.max(i, 0), 1);
      }
      saveQueue(q);
      if (conversion(type)) send();
    }

    function pageview() {
      page = pageUrl();
      depth = 0;
      measure();
      push('pageview', { title: d.title });
    }

    const state = () => (now() - lastAct <= ACTIVE_MS ? 'active' : 'idle');
    const pageUrl = () => loc.href.split('#')[0];

    function heartbeat(st, url) {
      account();
      push('heartbeat', { url: url || loc.href, active_ms: session.ms, scroll: depth, state: st });
    }

    // ---- delivery ----------------------------------------------------------------

    // The breaker's state is shared by the site's tabs and kept across page loads:
    // {mode, since, nextProbeAt, failures (unanswered attempts not yet reported
    // by a request that got a 2xx), streak (primary failures in a row)}.
    const breaker = () => {
      const b = local.get('om_b');
      return b?.mode ? b : { mode: 'primary', failures: 0, streak: 0 };
    };
    const channelOf = (b) => (b.mode === 'failover' && failoverApiUrl ? 'failover' : 'primary');
    const urlOf = (ch) => (ch === 'failover' ? failoverApiUrl : apiUrl);

    function encode(q, evs, ch, f) {
      const sid = evs[0].s;
      return JSON.stringify({
        v: 1,
        site: siteId,
        sid,
        vid,
        sent_at: now(),
        failures: Math.min(f, 10),
        channel: ch,
        ctx: q.c[sid],
        events: evs.map(({ s, ...e }) => e),
      });
    }

    // tooBig: a body over 60,000 bytes of UTF-8 (as the server and fetch count
    // them), under the server's 64 KiB and fetch keepalive's quota.
    const tooBig = (s) => new Blob([s]).size > 6e4;

    // nextBatch takes the oldest session's first events, at most `limit` and
    // halved until the body fits one request.
    function nextBatch(q, ch, f) {
      const sid = q.e[0].s;
      let evs = q.e.filter((e) => e.s === sid).slice(0, limit);
      let body = encode(q, evs, ch, f);
      while (tooBig(body) && evs.length > 1) body = encode(q, (evs = evs.slice(0, Math.ceil(evs.length / 2))), ch, f);
      return [body, evs.map((e) => e.id)];
    }

    // request resolves to the Response, or to 0 after a network error or a
    // 10-second timeout (a late answer to a timed-out request is ignored: the
    // retry repeats its events and the server de-duplicates).
    const request = (url, init) =>
      Promise.race([fetch(url, { credentials: 'omit', ...init }), new Promise((r) => setTimeout(r, 1e4, 0))]).catch(() => 0);

    const post = (url, body) =>
      request(url, { method: 'POST', body, keepalive: true, headers: { 'Content-Type': 'text/plain;charset=UTF-8' } });

    let busy = false; // one request at a time per tab
    let waitUntil = 0; // back-off or Retry-After: no fetch and no beacon before
    let retryTimer;
    let tries = 0; // failed attempts in a row, for the back-off
    let limit = 100; // events per request (the server's limit), halved by a 413

    // send delivers the queue with fetch, one batch after another.
    function send() {
      if (busy || now() < waitUntil) return;
      const q = loadQueue();
      if (!q.e.length) return;
      const b = breaker();
      const ch = channelOf(b);
      const [body, ids] = nextBatch(q, ch, b.failures);
      if (tooBig(body)) {
        remove(ids); // one event too large for any request: the server would answer 413
        return send();
      }
      post(urlOf(ch), body).then(
        guard((r) => {
          busy = false;
          settle(r, ids, ch);
        })
      );
      busy = true; // after post(): if it threw, the next send may try again
    }

    // later waits ms, or without a valid ms the back-off: exponential with
    // jitter, 1–2 s, 2–4 s, 4–8 s, … up to 2.5–5 minutes; then sends.
    function later(ms) {
      if (!(ms > 0)) {
        ms = Math.min(3e5, 2000 * 2 ** tries++);
        ms = ms / 2 + (Math.random() * ms) / 2;
      }
      waitUntil = now() + ms;
      clearTimeout(retryTimer);
      // The timer ends the wait itself: it may fire while Date.now(), a whole
      // number, is still a fraction of a millisecond short of waitUntil.
      retryTimer = setTimeout(
        guard(() => {
          waitUntil = 0;
          send();
        }),
        ms
      );
    }

    // settle acts on a response as PROTOCOL.md's table says.
    function settle(r, ids, ch) {
      const st = r.status; // none when r is 0 (no answer)
      const kind = (st / 100) | 0; // 2 for 2xx, 4 for 4xx, …
      const b = breaker();
      if (st === 413 && ids.length > 1) {
        limit = Math.ceil(ids.length / 2); // split, retry the halves
        return send();
      }
      if (st === 429) {
        return later(1000 * r.headers.get('Retry-After'));
      }
      if (kind === 2 || kind === 4) {
        // Delivered, or a 4xx that will never succeed: either way the events leave.
        // The server counts reported failures only from a batch it stored
        // (a 2xx): then the next request reports only new ones. After a 4xx
        // the count waits for the next 2xx.
        remove(ids);
        if (kind === 2) b.failures = 0;
        b.streak = tries = 0; // a 4xx never trips the breaker (on the failover the streak is 0 already)
        local.set('om_b', b);
        return send();
      }
      // A 5xx, a network error or a timeout: keep the events and retry. Only
      // an attempt without an answer is a failure to report (the server has
      // counted its 5xx); three failures in a row on the primary, 5xx
      // included, open the breaker. Offline nothing counts (the visitor's
      // connection failed, not ours): browsers fail a request made offline at
      // once, so onLine now is onLine when it was made.
      if (nav.onLine) {
        if (!r) b.failures++;
        if (ch === 'primary' && ++b.streak >= 3 && failoverApiUrl) {
          b.mode = 'failover';
          b.nextProbeAt = (b.since = now()) + probeMs;
          b.streak = tries = 0;
          local.set('om_b', b);
          probe();
          return send();
        }
      }
      local.set('om_b', b);
      later();
    }

    // probe waits for the breaker's nextProbeAt (which any tab may move), then
    // asks the primary (GET is its health check) whether it is back.
    let probeTimer;
    function probe() {
      const b = breaker();
      const wait = b.nextProbeAt - now();
      clearTimeout(probeTimer);
      if (b.mode !== 'failover') return;
      if (wait > 0) return (probeTimer = setTimeout(guard(probe), wait));
      b.nextProbeAt = now() + probeMs;
      local.set('om_b', b);
      request(apiUrl, { method: 'GET', cache: 'no-store' }).then(
        guard((r) => {
          if (r.status !== 200) return probe();
          const b = breaker();
          b.mode = 'primary';
          b.streak = 0;
          local.set('om_b', b);
          tries = waitUntil = 0;
          send();
        })
      );
    }

    // beacon hands every queued event to sendBeacon as the page is hidden or
    // unloaded. Its outcome is unknown, so the events stay queued: the next
    // send (in this page or the next) repeats them and the server de-duplicates.
    // A server that is failing or asked us to wait gets no beacon.
    function beacon() {
      const q = loadQueue();
      const b = breaker();
      const ch = channelOf(b);
      if (now() < waitUntil) return;
      while (q.e.length) {
        // A beacon reports no failures: its fate is unknown, and the fetch
        // that repeats its events reports them.
        const [body, ids] = nextBatch(q, ch, 0);
        nav.sendBeacon(urlOf(ch), body); // refuses (returns false) a body over its quota
        q.e = q.e.filter((e) => !ids.includes(e.id));
      }
    }

    // ---- adaptive heartbeat ----------------------------------------------------
    // Active: every minute. Idle: 2, 5, then every 10 minutes. Hidden: none; one
    // beat on becoming visible again.

    let beatTimer;
    let beatDue = 0;
    let idleBeats = 0;

    function schedule(ms) {
      clearTimeout(beatTimer);
      beatDue = now() + ms;
      beatTimer = setTimeout(guard(beat), ms);
    }

    function beat() {
      if (hidden) return;
      const st = state();
      heartbeat(st);
      send();
      schedule(st === 'active' ? ((idleBeats = 0), ACTIVE_MS) : IDLE_STEPS[Math.min(idleBeats++, 2)]);
    }

    // act records an interaction: after 30 minutes without activity it starts
    // a new session (with a pageview of the current page) first.
    function act() {
      renew();
      lastAct = session.last = now();
    }

    function interact() {
      measure();
      account();
      act();
      if (hidden) return d.visibilityState !== 'hidden' && show(); // after a cancelled beforeunload
      if (beatDue > lastAct + ACTIVE_MS) schedule(ACTIVE_MS); // back from idle
    }

    // hide runs on visibilitychange→hidden, pagehide and beforeunload; the
    // first of them sends the beacon.
    function hide() {
      if (hidden) return;
      account();
      hidden = true;
      clearTimeout(beatTimer);
      heartbeat('hidden');
      beacon();
    }

    function show() {
      if (!hidden) return;
      account();
      hidden = false;
      act(); // coming back to the tab counts as an interaction
      beat();
    }

    // ---- page events -------------------------------------------------------------

    function navigated() {
      if (pageUrl() === page) return;
      // The page being left: its final depth and engaged time ride with the next request.
      heartbeat(state(), page);
      pageview();
    }

    function onClick(e) {
      const href = (e.target.closest?.('a[href]')?.getAttribute('href') || '').trim();
      if (/^tel:/i.test(href)) push('phone_click', { target: href.slice(4) });
      else if (/^(whatsapp:|https?:\/\/(wa\.me|api\.whatsapp\.com)\/)/i.test(href)) push('whatsapp_click', { target: href });
    }

    function onSubmit(e) {
      const f = e.target;
      push('form_submit', { form: f.getAttribute('id') || f.getAttribute('name') || '' });
    }

    function track(name, props) {
      name = String(name || '').slice(0, 64);
      if (!name) return;
      // props: flat, the first 20 string, finite number or boolean values.
      const kept = Object.entries(props || {}).filter(([, v]) => /^(string|boolean)$/.test(typeof v) || Number.isFinite(v));
      push('custom', { name, props: Object.fromEntries(kept.slice(0, 20)) });
    }

    // ---- start -------------------------------------------------------------------

    w.opsmantik = { track: guard(track), flush: guard(send) };

    const leftover = loadQueue().e.length; // left by a tab that closed before delivering
    pageview();

    // Capture, so that the page stopping propagation hides nothing. Browsers treat
    // window- and document-level touch and wheel listeners as passive.
    const listen = (target, type, fn) => target.addEventListener(type, guard(fn), true);
    ['scroll', 'click', 'keydown', 'touchstart'].forEach((t) => listen(w, t, interact));
    listen(d, 'click', onClick);
    listen(d, 'submit', onSubmit);
    listen(d, 'visibilitychange', () => (d.visibilityState === 'hidden' ? hide() : show()));
    listen(w, 'pagehide', hide);
    listen(w, 'beforeunload', hide);
    listen(w, 'pageshow', (e) => {
      if (!e.persisted) return;
      pageview(); // restored from the back-forward cache
      show();
    });
    listen(w, 'popstate', navigated);
    const history = w.history;
    ['pushState', 'replaceState'].forEach((m) => {
      const orig = history[m];
      history[m] = function () {
        const r = orig.apply(this, arguments);
        guard(navigated)();
        return r;
      };
    });

    if (!hidden) schedule(ACTIVE_MS);
    if (leftover) send();
    probe();
  }
})(window);
