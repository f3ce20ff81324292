'use strict';
// The stack the browser tests run against: the real `opsmantik dev` binary on a
// fresh PostgreSQL database, a small controllable proxy in front of it (the
// "primary" endpoint, which can be told to answer 500), and Debian's Chromium
// driven by playwright-core.

const { spawn, execFile } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { promisify } = require('node:util');
const { Client } = require('pg');
const { chromium } = require('playwright-core');

const REPO = path.resolve(__dirname, '..', '..');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// The server classifies "HeadlessChrome" as a bot: the tests browse as desktop Chrome.
const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// eventually polls fn until it returns a truthy value; it waits for real I/O
// (a request to arrive, a row to be written), it asserts no timing.
async function eventually(fn, what, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const desc = typeof what === 'function' ? what() : what;
      throw new Error(`timed out waiting for ${desc} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await sleep(100);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function buildBinary(dir) {
  const bin = path.join(dir, 'opsmantik');
  await promisify(execFile)('go', ['build', '-o', bin, './cmd/opsmantik'], { cwd: REPO, maxBuffer: 1 << 24 });
  return bin;
}

// freshDatabase creates an empty database on DATABASE_URL's server.
async function freshDatabase() {
  const base = new URL(process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable');
  const name = `opsmantik_tracker_e2e_${crypto.randomBytes(4).toString('hex')}`;
  const admin = new URL(base);
  admin.pathname = '/postgres';
  const adminUrl = admin.toString();
  const c = new Client({ connectionString: adminUrl });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      const d = new Client({ connectionString: adminUrl });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await d.end();
    },
  };
}

async function startDev(bin, databaseUrl) {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const proc = spawn(bin, ['dev'], {
    // No demo data: each test writes the rows it checks.
    env: { OPSMANTIK_DEMO_DATA: 'false', ...process.env, DATABASE_URL: databaseUrl, OPSMANTIK_ADDR: `127.0.0.1:${port}`, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (d) => (output += d));
  proc.stderr.on('data', (d) => (output += d));
  const exited = new Promise((r) => proc.on('exit', r));
  try {
    await eventually(async () => {
      if (proc.exitCode !== null) throw new Error(`opsmantik dev exited: ${output}`);
      const r = await fetch(`${origin}/api/sync`);
      return r.status === 200;
    }, 'opsmantik dev to answer its health probe');
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`${e.message}\n${output}`);
  }
  return {
    origin,
    api: `${origin}/api/sync`,
    output: () => output,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGINT');
      await Promise.race([exited, sleep(10000)]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    },
  };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function testPage({ primary, failover, probe }) {
  const attrs = [`data-site="demo"`, `data-api="${primary}"`];
  if (failover) attrs.push(`data-failover-api="${failover}"`);
  if (probe) attrs.push(`data-probe-interval="${probe}"`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tracker test page</title></head>
<body>
<h1>Tracker test page</h1>
<p><a id="phone" href="tel:+905551112233">Call us</a></p>
<form id="contact" onsubmit="event.preventDefault()"><input name="name"><button id="submit" type="submit">Send</button></form>
<div style="height:300vh"></div>
<script async src="/ux-core.js" ${attrs.join(' ')}></script>
</body></html>`;
}

// startProxy serves test pages and the tracker, and forwards /api/sync to the
// dev server, unless told to fail: it is the primary endpoint.
async function startProxy(dev) {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const state = { mode: 'up', log: [] };
  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, origin);
      if (url.pathname === '/blank') {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end('<!doctype html><title>blank</title>');
        return;
      }
      if (url.pathname === '/page') {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
        res.end(testPage({ primary: `${origin}/api/sync`, failover: url.searchParams.has('failover') && dev.api, probe: url.searchParams.get('probe') }));
        return;
      }
      if (url.pathname !== '/api/sync' && url.pathname !== '/ux-core.js') {
        res.writeHead(404).end();
        return;
      }
      const body = await readBody(req);
      const entry = { method: req.method, path: url.pathname, at: Date.now(), mode: state.mode, body: null, status: 0 };
      if (url.pathname === '/api/sync') {
        if (body.length) entry.body = JSON.parse(body.toString('utf8'));
        state.log.push(entry);
      }
      if (url.pathname === '/api/sync' && state.mode === 'down') {
        entry.status = 500;
        const headers = { 'Content-Type': 'application/json' };
        if (req.headers.origin) Object.assign(headers, { 'Access-Control-Allow-Origin': req.headers.origin, Vary: 'Origin' });
        res.writeHead(500, headers).end('{"ok":false,"error":"primary_down"}');
        return;
      }
      const headers = { ...req.headers, host: new URL(dev.origin).host };
      delete headers.connection;
      const up = http.request(dev.origin + url.pathname, { method: req.method, headers }, (r) => {
        entry.status = r.statusCode;
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.writeHead(502).end());
      up.end(body);
    } catch (e) {
      res.writeHead(500).end(String(e));
    }
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    origin,
    api: `${origin}/api/sync`,
    state,
    page: (query = '') => `${origin}/page${query}`,
    stop: () => new Promise((r) => server.close(r)),
  };
}

async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run tracker/scripts/ensure-browser.sh`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

// startStack brings up everything; stop() takes it down in reverse.
async function startStack() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opsmantik-tracker-e2e-'));
  const stops = [async () => fs.rmSync(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  try {
    const bin = await buildBinary(dir);
    const db = await freshDatabase();
    stops.push(() => db.drop());
    const dev = await startDev(bin, db.url);
    stops.push(() => dev.stop());
    const proxy = await startProxy(dev);
    stops.push(() => proxy.stop());
    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    stops.push(() => pg.end());
    const browser = await launchBrowser();
    stops.push(() => browser.close());
    // cli runs the opsmantik command line against the stack's database.
    const cli = async (...args) => {
      const { stdout } = await promisify(execFile)(bin, args, { env: { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'warn' }, maxBuffer: 1 << 24 });
      return stdout;
    };
    return { dev, proxy, pg, browser, db, cli, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

// newContext opens an isolated browser profile that records every request to
// an ingest endpoint (fetch and beacon alike) as the browser made it.
async function newContext(browser, opts = {}) {
  const context = await browser.newContext({ userAgent: USER_AGENT, ...opts });
  const sent = [];
  context.on('request', (r) => {
    if (!r.url().endsWith('/api/sync')) return;
    let body = null;
    try {
      body = r.postData() ? JSON.parse(r.postData()) : null;
    } catch (e) {}
    sent.push({ url: r.url(), method: r.method(), type: r.resourceType(), body });
  });
  return { context, sent };
}

module.exports = { startStack, newContext, eventually, launchBrowser, USER_AGENT };
