package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// lockedBuffer is a bytes.Buffer safe to read while a process writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDevShowsTheWholeGoogleAdsLoop is the newcomer's path: `opsmantik dev`
// with no QStash and no Google credentials, a visit to the demo page's ad
// link that calls and sends the form, and the conversion goes through the
// local QStash to the dry worker: uploaded, dry_run, its request in the log.
func TestDevShowsTheWholeGoogleAdsLoop(t *testing.T) {
	dbURL := devDatabase(t)
	addr := freeAddr(t)
	cmd := exec.Command(binary, "dev")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QSTASH_") && !strings.HasPrefix(kv, "GOOGLE_") && !strings.HasPrefix(kv, "SYNC_GOOGLE_ADS_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "DATABASE_URL="+dbURL, "OPSMANTIK_ADDR="+addr, "TELEGRAM_BOT_TOKEN=", "OPSMANTIK_CRON=false")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "OpsMantik is running") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatalf("dev did not start: %s", stderr.String())
	}
	logs := stderr.String()
	if strings.Count(logs, "QSTASH_TOKEN is not set: a local QStash at http://127.0.0.1:") != 1 ||
		!strings.Contains(logs, "delivers conversions to http://"+addr+"/api/sync-google-ads") ||
		!strings.Contains(logs, "sync-google-ads runs dry") {
		t.Fatalf("dev should say, once, that it uses a local QStash and runs dry:\n%s", logs)
	}
	base := "http://" + addr
	m := regexp.MustCompile(`href="/\?gclid=(demo-[0-9a-f-]+)"`).FindStringSubmatch(get(t, base+"/"))
	if m == nil {
		t.Fatal("the demo page has no ad-click link")
	}
	gclid := m[1]

	now := time.Now().UnixMilli()
	batch := fmt.Sprintf(`{"v":1,"site":"demo","sid":"0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a02","vid":"0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a03","sent_at":%d,"channel":"primary","failures":0,
		"ctx":{"url":"%s/?gclid=%s","gclid":"%s"},
		"events":[{"id":"00000000-0000-4000-8000-000000000011","type":"pageview","ts":%d,"url":"%s/","title":"Demo"},
		          {"id":"00000000-0000-4000-8000-000000000012","type":"phone_click","ts":%d,"url":"%s/","target":"+905551112233"},
		          {"id":"00000000-0000-4000-8000-000000000013","type":"form_submit","ts":%d,"url":"%s/","form":"contact"}]}`,
		now, base, gclid, gclid, now-3000, base, now-2000, base, now-1000, base)
	req, _ := http.NewRequest("POST", base+"/api/sync", strings.NewReader(batch))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	req.Header.Set("Origin", "http://localhost:"+strings.Split(addr, ":")[1])
	req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("batch: %d %s", resp.StatusCode, raw)
	}

	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var status string
	var dry bool
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := pool.QueryRow(context.Background(), `SELECT status, dry_run FROM conversions WHERE click_id = $1`, gclid).Scan(&status, &dry)
		if err == nil && status == "uploaded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the conversion did not go round (status %q, %v):\n%s", status, err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !dry {
		t.Fatal("uploaded without credentials, yet not dry_run")
	}
	if logs := stderr.String(); !strings.Contains(logs, "this request was not sent") || !strings.Contains(logs, `"gclid":"`+gclid+`"`) {
		t.Fatalf("the dry run's request is not in the log:\n%s", logs)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev exited with %v: %s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("dev did not stop on SIGINT")
	}
}
