package deploy_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/googleads/googleadstest"
	"github.com/opsmantik/opsmantik/pkg/lambdatest"
	"github.com/opsmantik/opsmantik/pkg/qstashlocal"
	"github.com/opsmantik/opsmantik/pkg/sites"
)

// syncGoogleAdsCase: the worker refuses an unsigned delivery, uploads a
// conversion from a delivery signed as QStash signs it (to Google Ads' fake),
// and answers a repeat of it 200 without uploading again.
func syncGoogleAdsCase(tb testing.TB) (map[string]string, func(*testing.T, *lambdatest.Function)) {
	url, pool := database(tb)
	ctx := context.Background()
	if _, err := sites.Add(ctx, pool, sites.NewSite{PublicID: "shop1", Domains: []string{"shop.example"}, Timezone: "Europe/Istanbul", Currency: "TRY"}); err != nil {
		tb.Fatal(err)
	}
	if _, err := sites.SetAds(ctx, pool, "shop1", sites.AdsSettings{GoogleAdsCustomerID: ptr("123-456-7890"), GoogleAdsConversionAction: ptr("Qualified lead")}); err != nil {
		tb.Fatal(err)
	}
	var id string
	err := pool.QueryRow(ctx, `
		INSERT INTO conversions (site_id, session_id, destination, click_id_type, click_id, visitor_id, value, currency, converted_at)
		SELECT id, gen_random_uuid(), 'google_ads', 'gclid', 'Cj0KCQ-lambda', gen_random_uuid(), 95, 'TRY', now() - interval '1 hour'
		FROM sites RETURNING id::text`).Scan(&id)
	if err != nil {
		tb.Fatal(err)
	}
	ads := googleadstest.NewServer(googleadstest.Options{})
	tb.Cleanup(ads.Close)
	ads.AddConversionAction(googleadstest.ConversionAction{CustomerID: "1234567890", ID: 987, Name: "Qualified lead"})
	const workerURL = "https://abcdefghij.lambda-url.eu-central-1.on.aws/"
	env := map[string]string{
		"DATABASE_URL": url, "DB_MAX_CONNS": "2", "LOG_LEVEL": "info",
		"QSTASH_CURRENT_SIGNING_KEY": "sig_current-for-tests", "QSTASH_NEXT_SIGNING_KEY": "sig_next-for-tests",
		"SYNC_GOOGLE_ADS_URL":    workerURL,
		"GOOGLE_ADS_API_URL":     ads.URL,
		"GOOGLE_OAUTH_TOKEN_URL": ads.TokenURL(),
		"GOOGLE_ADS_CLIENT_ID":   googleadstest.ClientID, "GOOGLE_ADS_CLIENT_SECRET": googleadstest.ClientSecret,
		"GOOGLE_ADS_REFRESH_TOKEN": googleadstest.RefreshToken,
	}
	return env, func(t *testing.T, f *lambdatest.Function) {
		body := fmt.Sprintf(`{"conversion_id":%q}`, id)
		res := invokeHTTP(t, f, http.MethodPost, body, map[string]string{"Content-Type": "application/json"})
		if res.status != http.StatusUnauthorized || len(ads.Requests()) != 0 {
			t.Fatalf("unsigned: %d %s, %d Google requests; want 401 and nothing sent", res.status, res.body, len(ads.Requests()))
		}
		sig, err := qstashlocal.Sign(env["QSTASH_CURRENT_SIGNING_KEY"], workerURL, []byte(body), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		headers := map[string]string{"Content-Type": "application/json", "Upstash-Signature": sig, "Upstash-Retried": "0", "Upstash-Message-Id": "msg_lambda"}
		res = invokeHTTP(t, f, http.MethodPost, body, headers)
		if res.status != http.StatusOK || !strings.Contains(res.body, `"outcome":"uploaded"`) {
			t.Fatalf("signed: %d %s\nfunction output:\n%s", res.status, res.body, f.Logs())
		}
		ups := ads.Uploads()
		if len(ups) != 1 || ups[0].Conversion.Gclid != "Cj0KCQ-lambda" || ups[0].Conversion.OrderID != id || !strings.HasSuffix(ups[0].Conversion.ConversionDateTime, "+03:00") {
			t.Fatalf("uploads %+v", ups)
		}
		var status, message string
		if err := pool.QueryRow(context.Background(), `SELECT status, qstash_message_id FROM conversions`).Scan(&status, &message); err != nil || status != "uploaded" || message != "msg_lambda" {
			t.Fatalf("row %s %s %v", status, message, err)
		}
		// QStash delivers at least once: the repeat is done, not sent again.
		res = invokeHTTP(t, f, http.MethodPost, body, headers)
		if res.status != http.StatusOK || !strings.Contains(res.body, `"outcome":"already_uploaded"`) || len(ads.Uploads()) != 1 {
			t.Fatalf("repeat: %d %s, %d uploads", res.status, res.body, len(ads.Uploads()))
		}
	}
}

func ptr(s string) *string { return &s }

// lateLead is a session that qualified two hours ago, before its site had
// Google Ads configured, and sent nothing since: only the conversion sweep
// that runs in watchtower-cron can make its outbox row. (It started outside
// WT001's hour, so that check still fires on this otherwise empty database.)
func lateLead(tb testing.TB, pool *pgxpool.Pool) {
	tb.Helper()
	ctx := context.Background()
	if _, err := sites.Add(ctx, pool, sites.NewSite{PublicID: "late", Domains: []string{"late.example"}}); err != nil {
		tb.Fatal(err)
	}
	_, err := pool.Exec(ctx, `
		INSERT INTO sessions (site_id, id, started_at, last_seen_at, last_active_at, gclid, traffic_source, device_type, phone_clicks, form_submits)
		SELECT id, gen_random_uuid(), now() - interval '2 hours', now() - interval '2 hours', now() - interval '2 hours',
		       'Cj0KCQ-late', 'google_ads', 'desktop', 1, 1 FROM sites`)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := sites.SetAds(ctx, pool, "late", sites.AdsSettings{GoogleAdsCustomerID: ptr("1234567890"), GoogleAdsConversionAction: ptr("987")}); err != nil {
		tb.Fatal(err)
	}
}

// checkSwept: the sweep made the late lead's row; without QStash it stays pending.
func checkSwept(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	var n int
	var status string
	if err := pool.QueryRow(context.Background(), `SELECT count(*), min(status) FROM conversions WHERE click_id = 'Cj0KCQ-late'`).Scan(&n, &status); err != nil || n != 1 || status != "pending" {
		t.Errorf("after a watchtower-cron run: %d rows for the late lead (status %s, %v); want the sweep's one pending row", n, status, err)
	}
}
