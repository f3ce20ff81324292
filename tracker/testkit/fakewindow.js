'use strict';
// A small fake browser for tracker/ux-core.js: a fake clock, a fake network
// with a de-duplicating fake ingest server, storage, and pages (a window, its
// document and the few elements the tracker looks at). The tracker's source is
// evaluated unchanged with Node's vm, one context per page, so that tests and
// the benchmark drive it exactly as a browser would, without sleeping.

const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const nodeCrypto = require('node:crypto');

const SOURCE_PATH = path.join(__dirname, '..', 'ux-core.js');
const SCRIPT = new vm.Script(fs.readFileSync(SOURCE_PATH, 'utf8'), { filename: SOURCE_PATH });

const START = Date.UTC(2025, 0, 6, 9, 0, 0); // a Monday, 09:00 UTC
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

// Lets every promise chain that the last step started run to its end.
async function settle() {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
}

// Clock is a fake time source with timers. advance() runs due timers in
// order, letting promise chains settle after each one. Like a browser's, its
// timers keep fractional milliseconds while Date.now() is a whole number, so a
// timer can fire while Date.now() is still just short of the time it aimed at.
class Clock {
  constructor(start = START) {
    this.now = start;
    this.timers = new Map();
    this.seq = 0;
  }

  setTimeout(owner, fn, ms, args) {
    const id = ++this.seq;
    this.timers.set(id, { at: this.now + Math.max(0, Number(ms) || 0), fn, args, owner });
    return id;
  }

  clearTimeout(id) {
    this.timers.delete(id);
  }

  drop(owner) {
    for (const [id, t] of this.timers) if (t.owner === owner) this.timers.delete(id);
  }

  // pending lists the due times of an owner's timers.
  pending(owner) {
    return [...this.timers.values()].filter((t) => t.owner === owner).map((t) => t.at - this.now);
  }

  async advance(ms) {
    const end = this.now + ms;
    await settle();
    for (;;) {
      let nextId = null;
      let next = null;
      for (const [id, t] of this.timers) {
        if (t.at <= end && (!next || t.at < next.at)) {
          nextId = id;
          next = t;
        }
      }
      if (!next) break;
      this.timers.delete(nextId);
      this.now = next.at;
      next.fn(...next.args);
      await settle();
    }
    this.now = end;
    await settle();
  }
}

// Net is the network: it records every request and answers with a handler
// that tests replace. Its fake ingest server keeps each event id once, as the
// real one does.
class Net {
  constructor() {
    this.log = [];
    this.stored = new Map(); // event id → {event, sid, ctx, site}
    this.deliveries = new Map(); // event id → times a 2xx response covered it
    this.handler = () => ({ status: 200 });
  }

  // answer runs the handler and, for a 2xx to a POST, stores the events.
  answer(req) {
    const res = this.handler(req) || { status: 200 };
    if (typeof res === 'object' && req.method === 'POST' && res.status >= 200 && res.status < 300 && req.body) {
      for (const ev of req.body.events) {
        this.deliveries.set(ev.id, (this.deliveries.get(ev.id) || 0) + 1);
        if (!this.stored.has(ev.id)) this.stored.set(ev.id, { event: ev, sid: req.body.sid, ctx: req.body.ctx, site: req.body.site });
      }
    }
    return res;
  }

  requests(filter = {}) {
    return this.log.filter((r) => Object.entries(filter).every(([k, v]) => r[k] === v));
  }

  posts() {
    return this.log.filter((r) => r.method === 'POST');
  }

  // events lists the events of every request (beacons included), in order.
  sentEvents(type) {
    return this.posts()
      .flatMap((r) => r.body.events)
      .filter((e) => !type || e.type === type);
  }

  storedEvents(type) {
    return [...this.stored.values()].map((s) => s.event).filter((e) => !type || e.type === type);
  }
}

class Emitter {
  constructor() {
    this.listeners = {};
  }
  addEventListener(type, fn) {
    (this.listeners[type] = this.listeners[type] || []).push(fn);
  }
  removeEventListener(type, fn) {
    this.listeners[type] = (this.listeners[type] || []).filter((f) => f !== fn);
  }
  emit(type, ev = {}) {
    for (const fn of (this.listeners[type] || []).slice()) fn.call(this, { type, ...ev });
  }
  count() {
    return Object.values(this.listeners).reduce((n, l) => n + l.length, 0);
  }
}

// element makes the small part of a DOM element the tracker uses.
function element(tagName, attrs = {}, parent = null) {
  return {
    tagName: tagName.toUpperCase(),
    parentElement: parent,
    getAttribute: (n) => (n in attrs ? String(attrs[n]) : null),
    closest(selector) {
      if (selector !== 'a[href]') throw new Error(`fake closest() knows only a[href], not ${selector}`);
      for (let e = this; e; e = e.parentElement) if (e.tagName === 'A' && e.getAttribute('href') !== null) return e;
      return null;
    },
  };
}

class FakeStorage {
  constructor(map = new Map(), { full = false } = {}) {
    this.map = map;
    this.full = full;
  }
  getItem(k) {
    return this.map.has(k) ? this.map.get(k) : null;
  }
  setItem(k, v) {
    if (this.full) throw new Error('QuotaExceededError');
    this.map.set(k, String(v));
  }
  removeItem(k) {
    this.map.delete(k);
  }
  get length() {
    return this.map.size;
  }
}

// Browser is one browser profile: its localStorage is shared by its pages;
// each tab has its own sessionStorage, kept across reloads of that tab.
class Browser {
  constructor({ clock = new Clock(), net = new Net(), storage = 'ok' } = {}) {
    this.clock = clock;
    this.net = net;
    this.local = new Map();
    this.storage = storage; // 'ok' | 'blocked' (access throws) | 'full' (writes throw)
    this.random = Math.random;
  }

  // open loads a page in a new tab (or in `tab`, to reload it).
  open(opts = {}) {
    return new Page(this, { tab: opts.tab || { session: new Map() }, ...opts });
  }
}

const DEFAULT_DATASET = { site: 'demo', api: 'https://t.example/api/sync' };

class Page {
  constructor(browser, opts) {
    const {
      url = 'https://shop.example/',
      referrer = '',
      title = 'Shop',
      dataset = DEFAULT_DATASET,
      visibility = 'visible',
      scrollHeight = 4000,
      innerHeight = 800,
      maxTouchPoints = 0, // a desktop without a touch screen
      tab,
      copies = 1,
      hooks = {},
    } = opts;
    this.browser = browser;
    this.clock = browser.clock;
    this.net = browser.net;
    this.tab = tab;
    this.closed = false;

    const page = this;
    const clock = this.clock;
    const href = { value: new URL(url).href };
    const win = new Emitter();
    const doc = new Emitter();
    this.window = win;
    this.document = doc;
    this.script = { dataset: { ...dataset } };

    const location = {
      get href() {
        return href.value;
      },
      get search() {
        return new URL(href.value).search;
      },
      get pathname() {
        return new URL(href.value).pathname;
      },
    };
    this.setUrl = (u) => (href.value = new URL(u, href.value).href);

    Object.assign(doc, {
      visibilityState: visibility,
      title,
      referrer,
      currentScript: this.script,
      documentElement: { scrollHeight },
      querySelector: (sel) => (sel === 'script[data-site]' ? this.script : null),
    });

    const storageFor = (name, map) => {
      if (browser.storage === 'blocked') {
        Object.defineProperty(win, name, {
          get() {
            throw new Error(`SecurityError: access to ${name} is denied`);
          },
        });
      } else {
        win[name] = new FakeStorage(map, { full: browser.storage === 'full' });
      }
    };
    storageFor('localStorage', browser.local);
    storageFor('sessionStorage', tab.session);

    const fakeMath = Object.create(Math);
    fakeMath.random = () => browser.random();
    function FakeDate(...a) {
      return a.length ? new Date(...a) : new Date(Math.floor(clock.now));
    }
    FakeDate.now = () => Math.floor(clock.now);

    Object.assign(win, {
      window: win,
      document: doc,
      location,
      // Tests set onLine to false for a visitor without a connection.
      navigator: {
        onLine: true,
        maxTouchPoints,
        language: 'tr-TR',
        userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
        sendBeacon(u, body) {
          page.request('beacon', u, { method: 'POST', body });
          return true;
        },
      },
      history: {
        pushState(state, t, u) {
          if (u != null) page.setUrl(u);
        },
        replaceState(state, t, u) {
          if (u != null) page.setUrl(u);
        },
      },
      screen: { width: 390, height: 844 },
      scrollY: 0,
      innerHeight,
      crypto: { randomUUID: () => nodeCrypto.randomUUID() },
      fetch: (u, init = {}) => page.fetch(u, init),
      setTimeout: (fn, ms, ...args) => clock.setTimeout(page, fn, ms, args),
      clearTimeout: (id) => clock.clearTimeout(id),
      Date: FakeDate,
      Math: fakeMath,
      URLSearchParams,
      Blob,
      console,
    });
    if (hooks.beforeScript) hooks.beforeScript(this);

    this.context = vm.createContext(win);
    this.globalsBefore = Object.keys(win);
    for (let i = 0; i < copies; i++) SCRIPT.runInContext(this.context);
  }

  get api() {
    return this.window.opsmantik;
  }

  // request logs a request and, unless the browser is offline (then it goes
  // nowhere: the log keeps it with offline: true), gets the network's answer.
  request(kind, url, init) {
    const offline = this.window.navigator.onLine === false;
    let body = null;
    if (typeof init.body === 'string') body = JSON.parse(init.body);
    const req = {
      kind,
      page: this,
      url,
      method: init.method || 'GET',
      headers: { ...init.headers }, // a copy in this realm
      keepalive: !!init.keepalive,
      credentials: init.credentials,
      cache: init.cache,
      at: this.clock.now,
      rawBody: init.body,
      body,
      offline,
    };
    this.net.log.push(req);
    return { req, res: offline ? 'error' : this.net.answer(req) };
  }

  // fetch fails at once while offline, as browsers' does.
  fetch(url, init) {
    if (this.closed) return new Promise(() => {});
    const { res } = this.request('fetch', url, init);
    if (res === 'hang') return new Promise(() => {});
    if (res === 'error') return Promise.reject(new TypeError('Failed to fetch'));
    const headers = res.headers || {};
    return Promise.resolve({
      status: res.status,
      ok: res.status >= 200 && res.status < 300,
      headers: { get: (n) => (n in headers ? String(headers[n]) : null) },
    });
  }

  // ---- what a visitor does ----

  click(attrs = {}, { tag = 'a', wrap = false } = {}) {
    let target = element(tag, attrs);
    if (wrap) target = element('span', {}, target); // a click on an element inside the link
    this.window.emit('click', { target });
    this.document.emit('click', { target });
  }

  submit(attrs = {}) {
    const target = element('form', attrs);
    this.window.emit('click', { target });
    this.document.emit('submit', { target });
  }

  scrollTo(y) {
    this.window.scrollY = y;
    this.window.emit('scroll', { target: this.document });
  }

  key() {
    this.window.emit('keydown', { target: this.document });
  }

  // goOffline and goOnline: the visitor's connection goes and comes back.
  goOffline() {
    this.window.navigator.onLine = false;
    this.window.emit('offline');
  }

  goOnline() {
    this.window.navigator.onLine = true;
    this.window.emit('online');
  }

  hide() {
    this.document.visibilityState = 'hidden';
    this.document.emit('visibilitychange');
  }

  show() {
    this.document.visibilityState = 'visible';
    this.document.emit('visibilitychange');
  }

  // navigate is an SPA route change through the History API.
  navigate(url, { replace = false, title } = {}) {
    if (title) this.document.title = title;
    this.window.history[replace ? 'replaceState' : 'pushState']({}, '', url);
  }

  back(url) {
    this.setUrl(url);
    this.window.emit('popstate', { state: null });
  }

  // leaveToCache and restoreFromCache model the back-forward cache.
  leaveToCache() {
    this.hide();
    this.window.emit('pagehide', { persisted: true });
  }

  restoreFromCache() {
    this.document.visibilityState = 'visible';
    this.window.emit('pageshow', { persisted: true });
    this.document.emit('visibilitychange');
  }

  // close unloads the page as a browser does: beforeunload, hidden, pagehide;
  // then its timers and its pending requests are gone.
  close() {
    this.window.emit('beforeunload');
    this.document.visibilityState = 'hidden';
    this.document.emit('visibilitychange');
    this.window.emit('pagehide', { persisted: false });
    this.closed = true;
    this.clock.drop(this);
  }

  // reload closes the page and loads url (default: the same) in the same tab.
  reload(opts = {}) {
    const url = opts.url || this.window.location.href;
    this.close();
    return this.browser.open({ dataset: this.script.dataset, ...opts, url, tab: this.tab });
  }

  timers() {
    return this.clock.pending(this);
  }

  requests(filter = {}) {
    return this.net.requests({ ...filter, page: this });
  }

  storage(key) {
    const v = this.browser.local.get(key);
    return v == null ? null : JSON.parse(v);
  }

  queue() {
    return (this.storage('om_q') || { e: [] }).e;
  }
}

module.exports = { Clock, Net, Browser, Page, settle, START, SECOND, MINUTE, HOUR, SOURCE_PATH, DEFAULT_DATASET };
