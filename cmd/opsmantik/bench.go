package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/database"
	"github.com/opsmantik/opsmantik/pkg/ingest"
	"github.com/opsmantik/opsmantik/pkg/sites"
)

const benchUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"

// runBench measures ingest over loopback HTTP against the same database work
// done directly through pgx, and the parser on its own. Each side gets its
// own fresh database, dropped at the end.
func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	batches := fs.Int("batches", 8000, "3-event batches per side")
	concurrency := fs.Int("concurrency", 8, "requests in flight")
	limit := fs.Duration("max-time", 30*time.Second, "stop a side after this long")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the measured rounds (all sides) to this file")
	uaCorpus := fs.String("ua-corpus", "pkg/ingest/testdata/ua/corpus.json", "labelled User-Agents to classify")
	ceiling := addCeilingFlags(fs)       // bench_ceiling.go
	statsBench := addStatsBenchFlags(fs) // bench_stats.go
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cfg config.CLI
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))

	parse := testing.Benchmark(func(b *testing.B) {
		body := benchBody(uuid.New(), 0, time.Now())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ingest.Parse(body, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	fmt.Println("== ingest (3-event batches) ==")
	fmt.Printf("parse+validate: %.2f µs/batch, %d allocs/batch (target < 20 µs)\n",
		float64(parse.NsPerOp())/1000, parse.AllocsPerOp())
	ua, err := ingest.MeasureUACorpusFile(*uaCorpus)
	if err != nil {
		return err
	}
	fmt.Println(ua)

	httpPool, dropHTTP, err := benchDatabase(ctx, cfg.Database.URL, "http", *concurrency)
	if err != nil {
		return err
	}
	defer dropHTTP()
	directPool, dropDirect, err := benchDatabase(ctx, cfg.Database.URL, "direct", *concurrency)
	if err != nil {
		return err
	}
	defer dropDirect()

	// Both sides get the same batches (fresh ids each), a warm-up, and then
	// alternate in rounds, so that neither profits from going second or
	// suffers from noise that comes and goes.
	// Ranges start on a session (drive).
	warm, rounds := *batches/10/sessionBatches*sessionBatches, 8
	total := warm + *batches
	httpDo, stopHTTP, err := httpSide(ctx, httpPool, total, *concurrency)
	if err != nil {
		return err
	}
	defer stopHTTP()
	directDo, err := directSide(ctx, directPool, total)
	if err != nil {
		return err
	}
	// Through PgBouncer (bench_pooler.go): reported, not fatal, when it fails.
	pooled := pooledSide(ctx, cfg.Database.URL, total, *concurrency)
	defer pooled.close()
	ceil := newCeiling(ctx, cfg.Database.URL, ceiling, rounds) // bench_ceiling.go
	defer ceil.close()
	hotBefore, hotErr := readSessionUpdates(ctx, httpPool)
	for _, do := range []func(int) error{httpDo, directDo} {
		if _, err := drive(0, warm, *concurrency, *limit, do); err != nil {
			return err
		}
	}
	pooled.warmUp(0, warm, *concurrency, *limit)
	// A live database has statistics (autovacuum keeps them); a fresh one
	// keeps the plans chosen while its tables were empty until autovacuum's
	// first ANALYZE, a minute or more later, so the warmed-up tables are
	// analysed before the measured rounds.
	if err := analyze(ctx, httpPool, directPool, pooled.pool); err != nil {
		return err
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	var a, b benchResult
	per := *batches / rounds / sessionBatches * sessionBatches
	for r := range rounds {
		from, to := warm+r*per, warm+(r+1)*per
		ra, err := drive(from, to, *concurrency, *limit/time.Duration(rounds), httpDo)
		if err != nil {
			return err
		}
		rb, err := drive(from, to, *concurrency, *limit/time.Duration(rounds), directDo)
		if err != nil {
			return err
		}
		a, b = a.add(ra), b.add(rb)
		pooled.drive(from, to, *concurrency, *limit/time.Duration(rounds))
		ceil.round(ctx)
	}
	if *profile != "" {
		pprof.StopCPUProfile() // the profile covers the measured rounds only
	}
	fmt.Printf("(a) HTTP over loopback: %s\n", a)
	fmt.Printf("(b) direct pgx, same SQL: %s\n", b)
	fmt.Printf("ratio a/b: %.2f (target ≥ 0.60)\n", a.perSecond()/b.perSecond())
	pooled.report("c", a)
	reportHOT(ctx, httpPool, hotBefore, hotErr)
	ceil.report(a)
	reportAudit(ctx, cfg.Database.URL)                                            // bench_audit.go
	if err := benchConversions(ctx, cfg.Database.URL, *concurrency); err != nil { // bench_conversions.go
		return err
	}
	return runStatsBench(ctx, cfg.Database.URL, statsBench)
}

type benchResult struct {
	batches   int
	elapsed   time.Duration
	latencies []time.Duration
}

func (r benchResult) add(o benchResult) benchResult {
	return benchResult{batches: r.batches + o.batches, elapsed: r.elapsed + o.elapsed, latencies: append(r.latencies, o.latencies...)}
}

func (r benchResult) perSecond() float64 { return float64(r.batches) / r.elapsed.Seconds() }

func (r benchResult) String() string {
	slices.Sort(r.latencies)
	pct := func(p float64) time.Duration { return r.latencies[int(p*float64(len(r.latencies)-1))] }
	return fmt.Sprintf("%d batches in %.2fs: %.0f batches/s, %.0f events/s, p50 %.2f ms, p99 %.2f ms",
		r.batches, r.elapsed.Seconds(), r.perSecond(), 3*r.perSecond(),
		float64(pct(0.50).Microseconds())/1000, float64(pct(0.99).Microseconds())/1000)
}

// benchDatabase creates, migrates and fills a fresh database with the demo site.
func benchDatabase(ctx context.Context, serverURL, suffix string, conns int) (*pgxpool.Pool, func(), error) {
	_, adminURL, err := database.AdminURL(serverURL)
	if err != nil {
		return nil, nil, err
	}
	name := fmt.Sprintf("opsmantik_bench_%s_%d", suffix, time.Now().UnixNano())
	dbURL, err := database.WithDatabase(adminURL, name)
	if err != nil {
		return nil, nil, err
	}
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(dctx, adminURL); err == nil {
			_, _ = conn.Exec(dctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(dctx)
		}
	}
	pool, err := database.OpenMigrated(ctx, dbURL, int32(conns))
	if err != nil {
		drop()
		return nil, nil, err
	}
	if _, err := sites.Add(ctx, pool, sites.NewSite{PublicID: "bench", Domains: []string{"shop.example"}}); err != nil {
		pool.Close()
		drop()
		return nil, nil, err
	}
	return pool, func() { pool.Close(); drop() }, nil
}

// sessionBatches is how many batches each benchmark session has.
const sessionBatches = 4

// benchBody is batch i of a visit: every sessionBatches batches start a new
// session; each batch has a pageview, a heartbeat and a custom event.
func benchBody(sid uuid.UUID, i int, now time.Time) []byte {
	ts := now.UnixMilli()
	return fmt.Appendf(nil, `{"v":1,"site":"bench","sid":"%s","vid":"%s","sent_at":%d,"failures":0,"channel":"primary",`+
		`"ctx":{"url":"https://shop.example/landing?gclid=Cj0KCQ","referrer":"https://www.google.com/","gclid":"Cj0KCQ","wbraid":null,"gbraid":null,`+
		`"utm_source":"google","utm_medium":"cpc","utm_campaign":"brand","utm_term":null,"utm_content":null,"lang":"tr-TR","tz":"Europe/Istanbul","sw":390,"sh":844},`+
		`"events":[{"id":"%s","type":"pageview","ts":%d,"url":"https://shop.example/p/%d","title":"Product %d"},`+
		`{"id":"%s","type":"heartbeat","ts":%d,"active_ms":%d,"scroll":%d,"state":"active"},`+
		`{"id":"%s","type":"custom","ts":%d,"url":"https://shop.example/p/%d","name":"add_to_cart","props":{"sku":"A-%d","qty":1}}]}`,
		sid, sid, ts, uuid.New(), ts, i, i, uuid.New(), ts, 15000*(i%4+1), 20*(i%4+1), uuid.New(), ts, i, i)
}

func benchBodies(n int) [][]byte {
	now := time.Now()
	out := make([][]byte, n)
	var sid uuid.UUID
	for i := range out {
		if i%sessionBatches == 0 {
			sid = uuid.New()
		}
		// A session's batches are 15 s apart, so that each one moves
		// last_seen_at as a real visit does (what HOT updates depend on).
		out[i] = benchBody(sid, i, now.Add(time.Duration(i%sessionBatches-sessionBatches+1)*15*time.Second))
	}
	return out
}

// drive runs do over items [from, to) with c workers, stopping after limit.
// A worker takes a whole session (sessionBatches items from a multiple of
// it) and sends its batches in order, one at a time, as the tracker does
// (one request in flight per tab); the c workers are c visitors' tabs.
func drive(from, to, c int, limit time.Duration, do func(i int) error) (benchResult, error) {
	var next atomic.Int64
	next.Store(int64(from))
	lat := make([][]time.Duration, c)
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(limit)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				first := int(next.Add(sessionBatches)) - sessionBatches
				for i := first; i < min(first+sessionBatches, to); i++ {
					if time.Now().After(deadline) {
						return
					}
					t0 := time.Now()
					if err := do(i); err != nil {
						once.Do(func() { firstErr = err })
						return
					}
					lat[w] = append(lat[w], time.Since(t0))
				}
				if first >= to {
					return
				}
			}
		}()
	}
	wg.Wait()
	r := benchResult{elapsed: time.Since(start)}
	for _, l := range lat {
		r.latencies = append(r.latencies, l...)
	}
	r.batches = len(r.latencies)
	if r.batches == 0 && firstErr == nil {
		firstErr = fmt.Errorf("no batch completed")
	}
	return r, firstErr
}

// httpSide serves the sync handler on loopback and returns a function that
// posts batch i to it. The load generator is a plain HTTP/1.1 client over c
// keep-alive connections (the tracker's requests, byte for byte, the answer
// read with net/http's parser), so that it costs the shared cores about what
// pgbench's own client does, not what a full net/http client would.
func httpSide(ctx context.Context, pool *pgxpool.Pool, n, c int) (func(int) error, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: ingest.New(pool, ingest.WithLogger(discardLogger()))}
	go srv.Serve(ln)
	addr := ln.Addr().String()
	conns := make(chan *benchConn, c)
	for range c {
		conns <- &benchConn{}
	}
	bodies := benchBodies(n)
	do := func(i int) error {
		bc := <-conns
		defer func() { conns <- bc }()
		status, body, err := bc.post(addr, bodies[i])
		if err != nil {
			return fmt.Errorf("batch %d: %w", i, err)
		}
		if status != 200 || !bytes.Contains(body, []byte(`"accepted":3`)) {
			return fmt.Errorf("batch %d: %d %s", i, status, body)
		}
		return nil
	}
	stop := func() {
		close(conns)
		for bc := range conns {
			bc.close()
		}
		srv.Close()
	}
	return do, stop, nil
}

// benchConn is one keep-alive connection of the load generator.
type benchConn struct {
	conn net.Conn
	r    *bufio.Reader
	req  []byte
	resp bytes.Buffer
}

// post sends body as the tracker does and returns the answer's status and
// body, dialling (again) when the connection is not open.
func (bc *benchConn) post(addr string, body []byte) (int, []byte, error) {
	if bc.conn == nil {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, nil, err
		}
		bc.conn, bc.r = conn, bufio.NewReader(conn)
	}
	bc.req = append(bc.req[:0], "POST /api/sync HTTP/1.1\r\nHost: "...)
	bc.req = append(bc.req, addr...)
	bc.req = append(bc.req, "\r\nContent-Type: text/plain;charset=UTF-8\r\nOrigin: https://shop.example\r\nUser-Agent: "+benchUA+"\r\nContent-Length: "...)
	bc.req = strconv.AppendInt(bc.req, int64(len(body)), 10)
	bc.req = append(bc.req, "\r\n\r\n"...)
	bc.req = append(bc.req, body...)
	if _, err := bc.conn.Write(bc.req); err != nil {
		bc.close()
		return 0, nil, err
	}
	resp, err := http.ReadResponse(bc.r, nil)
	if err != nil {
		bc.close()
		return 0, nil, err
	}
	bc.resp.Reset()
	_, err = bc.resp.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		bc.close()
	}
	return resp.StatusCode, bc.resp.Bytes(), err
}

func (bc *benchConn) close() {
	if bc.conn != nil {
		bc.conn.Close()
		bc.conn = nil
	}
}

// directSide parses n batches up front and returns a function that stores
// batch i through pgx: the same database work, without HTTP or JSON.
func directSide(ctx context.Context, pool *pgxpool.Pool, n int) (func(int) error, error) {
	site, err := sites.ByPublicID(ctx, pool, "bench")
	if err != nil {
		return nil, err
	}
	now := time.Now()
	batches := make([]*ingest.Batch, n)
	for i, body := range benchBodies(n) {
		if batches[i], err = ingest.Parse(body, now); err != nil {
			return nil, err
		}
	}
	store := ingest.NewStore(pool)
	req := ingest.Request{SiteID: site.ID, Client: ingest.ClassifyUserAgent(benchUA, 0), Converts: site.Converts}
	return func(i int) error {
		res, err := store.Save(ctx, req, batches[i])
		if err == nil && res.Accepted(batches[i]) != 3 {
			err = fmt.Errorf("batch %d: accepted %d", i, res.Accepted(batches[i]))
		}
		return err
	}, nil
}

// analyze runs ANALYZE in the databases of pools (nil ones are skipped).
func analyze(ctx context.Context, pools ...*pgxpool.Pool) error {
	for _, p := range pools {
		if p == nil {
			continue
		}
		if _, err := p.Exec(ctx, "ANALYZE"); err != nil {
			return fmt.Errorf("analyze %s: %w", p.Config().ConnConfig.Database, err)
		}
	}
	return nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
