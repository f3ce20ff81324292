package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultCounterFlush is how often a process writes the ingest counters it
// has gathered (at most; a request that finds the counters due writes them
// after its own transaction, and an idle process's pending counts are
// written by a timer).
const DefaultCounterFlush = time.Second

// counters gathers the ingest counters (what the watchtower's error rate is
// made of, sql: ingest_counters and ingest_client_failures) in memory, by
// minute, and writes them at most once per interval instead of once per
// request: the answer to a batch does not need them, and an upsert per
// request costs the ingest path a tenth of its database time. A count waits
// at most about the interval in a busy process; an idle one's pending counts
// are written by a timer, or on shutdown (Handler.Shutdown, which the Lambda
// host calls on SIGTERM), and, where neither could run (a Lambda
// environment frozen and then reclaimed), at most the last interval's counts
// of that environment are lost. Each count keeps the minute it happened in,
// however late it is written, and a write that fails is put back.
type counters struct {
	pool  *pgxpool.Pool
	every time.Duration // 0: write after every request
	now   func() time.Time

	mu        sync.Mutex
	rows      map[time.Time]*counterRow // by minute
	clients   map[clientMinute]int64    // client-reported failures
	lastFlush time.Time                 // when the last write started
	timer     *time.Timer               // armed while counts are pending
	flushMu   sync.Mutex                // one write at a time
}

// counterRow is a minute's counts (the columns of ingest_counters).
type counterRow struct {
	requests, rejectedRequests, serverFailures      int64
	eventsAccepted, eventsDuplicate, eventsRejected int64
	botRequests, clientFailures                     int64
}

func (r *counterRow) add(o counterRow) {
	r.requests += o.requests
	r.rejectedRequests += o.rejectedRequests
	r.serverFailures += o.serverFailures
	r.eventsAccepted += o.eventsAccepted
	r.eventsDuplicate += o.eventsDuplicate
	r.eventsRejected += o.eventsRejected
	r.botRequests += o.botRequests
	r.clientFailures += o.clientFailures
}

type clientMinute struct {
	bucket time.Time
	client string
}

func newCounters(pool *pgxpool.Pool, every time.Duration) *counters {
	return &counters{pool: pool, every: every, now: time.Now,
		rows: map[time.Time]*counterRow{}, clients: map[clientMinute]int64{}}
}

// add records one request's counts (and the failures its client reported,
// under clientKey) in the current minute and reports whether a write is due.
func (c *counters) add(row counterRow, clientKey string) (due bool) {
	now := c.now()
	bucket := now.Truncate(time.Minute)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rowLocked(bucket).add(row)
	if row.clientFailures > 0 {
		c.clients[clientMinute{bucket, clientKey}] += row.clientFailures
	}
	c.armLocked()
	return now.Sub(c.lastFlush) >= c.every
}

// rowLocked is the pending row of bucket, made when missing. c.mu is held.
func (c *counters) rowLocked(bucket time.Time) *counterRow {
	r := c.rows[bucket]
	if r == nil {
		r = &counterRow{}
		c.rows[bucket] = r
	}
	return r
}

// armLocked makes sure a timer writes the pending counts of a process
// that receives no more requests. c.mu is held.
func (c *counters) armLocked() {
	if c.timer != nil || c.every <= 0 {
		return
	}
	c.timer = time.AfterFunc(c.every, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.flush(ctx)
	})
}

// take empties the pending counts and returns them.
func (c *counters) take() (map[time.Time]*counterRow, map[clientMinute]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rows, clients := c.rows, c.clients
	c.rows, c.clients = map[time.Time]*counterRow{}, map[clientMinute]int64{}
	c.lastFlush = c.now()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	return rows, clients
}

// putBack returns counts a write could not store to the pending ones, in
// their own minutes.
func (c *counters) putBack(rows map[time.Time]*counterRow, clients map[clientMinute]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for bucket, r := range rows {
		c.rowLocked(bucket).add(*r)
	}
	for k, n := range clients {
		c.clients[k] += n
	}
	c.armLocked()
}

const flushCountersSQL = `
INSERT INTO ingest_counters AS c (bucket, shard, requests, rejected_requests, server_failures,
                                  events_accepted, events_duplicate, events_rejected, bot_requests, client_failures)
SELECT * FROM unnest(@buckets::timestamptz[], @shards::smallint[], @requests::bigint[], @rejected_requests::bigint[],
                     @server_failures::bigint[], @events_accepted::bigint[], @events_duplicate::bigint[],
                     @events_rejected::bigint[], @bot_requests::bigint[], @client_failures::bigint[])
ON CONFLICT (bucket, shard) DO UPDATE SET
    requests          = c.requests + EXCLUDED.requests,
    rejected_requests = c.rejected_requests + EXCLUDED.rejected_requests,
    server_failures   = c.server_failures + EXCLUDED.server_failures,
    events_accepted   = c.events_accepted + EXCLUDED.events_accepted,
    events_duplicate  = c.events_duplicate + EXCLUDED.events_duplicate,
    events_rejected   = c.events_rejected + EXCLUDED.events_rejected,
    bot_requests      = c.bot_requests + EXCLUDED.bot_requests,
    client_failures   = c.client_failures + EXCLUDED.client_failures`

const flushClientsSQL = `
INSERT INTO ingest_client_failures AS f (bucket, client, failures)
SELECT * FROM unnest(@buckets::timestamptz[], @clients::text[], @failures::bigint[])
ON CONFLICT (bucket, client) DO UPDATE SET failures = f.failures + EXCLUDED.failures`

// flush writes the pending counts in one transaction, each minute's to a
// random one of its CounterShards rows (so that processes writing at once
// rarely wait on one row). On failure the counts are pending again.
func (c *counters) flush(ctx context.Context) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	rows, clients := c.take()
	if len(rows) == 0 && len(clients) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	if len(rows) > 0 {
		n := len(rows)
		buckets, shards := make([]time.Time, 0, n), make([]int16, 0, n)
		cols := make([][]int64, 8)
		for bucket, r := range rows {
			buckets = append(buckets, bucket)
			shards = append(shards, int16(rand.IntN(CounterShards)))
			for i, v := range []int64{r.requests, r.rejectedRequests, r.serverFailures, r.eventsAccepted,
				r.eventsDuplicate, r.eventsRejected, r.botRequests, r.clientFailures} {
				cols[i] = append(cols[i], v)
			}
		}
		batch.Queue(flushCountersSQL, pgx.NamedArgs{
			"buckets": buckets, "shards": shards,
			"requests": cols[0], "rejected_requests": cols[1], "server_failures": cols[2], "events_accepted": cols[3],
			"events_duplicate": cols[4], "events_rejected": cols[5], "bot_requests": cols[6], "client_failures": cols[7],
		})
	}
	if len(clients) > 0 {
		buckets, keys, failures := make([]time.Time, 0, len(clients)), make([]string, 0, len(clients)), make([]int64, 0, len(clients))
		for k, n := range clients {
			buckets, keys, failures = append(buckets, k.bucket), append(keys, k.client), append(failures, n)
		}
		batch.Queue(flushClientsSQL, pgx.NamedArgs{"buckets": buckets, "clients": keys, "failures": failures})
	}
	if err := c.pool.SendBatch(ctx, batch).Close(); err != nil {
		c.putBack(rows, clients)
		return fmt.Errorf("write ingest counters: %w", err)
	}
	return nil
}
