package config

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// workerEnv is a working sync-google-ads environment.
func workerEnv() map[string]string {
	return map[string]string{
		"DATABASE_URL":               "postgres://db/x",
		"QSTASH_CURRENT_SIGNING_KEY": "sig_current",
		"QSTASH_NEXT_SIGNING_KEY":    "sig_next",
		"SYNC_GOOGLE_ADS_URL":        "https://worker.example/",
	}
}

func TestConversionDefaults(t *testing.T) {
	var w SyncGoogleAds
	if err := LoadFrom(context.Background(), envconfig.MapLookuper(workerEnv()), &w); err != nil {
		t.Fatal(err)
	}
	if w.Delivery.Retries != 5 || w.GoogleAds.APIURL != "https://googleads.googleapis.com" || w.GoogleAds.APIVersion != "v26" ||
		w.GoogleAds.OAuthTokenURL != "https://oauth2.googleapis.com/token" || w.GA4.APIURL != "https://www.google-analytics.com" || w.GoogleAds.Configured() {
		t.Errorf("worker defaults %+v", w)
	}
	var j Jobs
	if err := LoadFrom(context.Background(), envconfig.MapLookuper(nil), &j); err != nil {
		t.Fatal(err)
	}
	if j.Publish.URL != "https://qstash.upstash.io" || j.Publish.Retries != 5 || j.Publish.Configured() ||
		j.Sweep.RepublishAfter != 5*time.Minute || j.Alerting.ConversionBacklogAfter != time.Hour {
		t.Errorf("jobs defaults %+v", j)
	}
}

func TestConversionConfigurationErrorsNameTheVariable(t *testing.T) {
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	w := workerEnv()
	cases := []struct {
		cfg  any
		env  map[string]string
		name string
	}{
		{&SyncGoogleAds{}, with(w, "QSTASH_CURRENT_SIGNING_KEY", ""), "QSTASH_CURRENT_SIGNING_KEY"},
		{&SyncGoogleAds{}, with(w, "QSTASH_NEXT_SIGNING_KEY", ""), "QSTASH_NEXT_SIGNING_KEY"},
		{&SyncGoogleAds{}, with(w, "SYNC_GOOGLE_ADS_URL", ""), "SYNC_GOOGLE_ADS_URL"},
		{&SyncGoogleAds{}, with(w, "SYNC_GOOGLE_ADS_URL", "worker.example/path"), "SYNC_GOOGLE_ADS_URL"},
		{&SyncGoogleAds{}, with(w, "QSTASH_RETRIES", "-1"), "QSTASH_RETRIES"},
		{&SyncGoogleAds{}, with(w, "QSTASH_RETRIES", fmt.Sprint(MaxQStashRetries+1)), "QSTASH_RETRIES"},
		{&SyncGoogleAds{}, with(w, "QSTASH_RETRIES", "five"), "QSTASH_RETRIES"},
		{&SyncGoogleAds{}, with(w, "GOOGLE_ADS_CLIENT_ID", "id"), "GOOGLE_ADS_CLIENT_SECRET"},
		{&SyncGoogleAds{}, with(w, "GOOGLE_ADS_CLIENT_ID", "id", "GOOGLE_ADS_CLIENT_SECRET", "s"), "GOOGLE_ADS_REFRESH_TOKEN"},
		{&SyncGoogleAds{}, with(w, "GOOGLE_ADS_REFRESH_TOKEN", "r"), "GOOGLE_ADS_CLIENT_ID"},
		{&SyncGoogleAds{}, with(w, "GOOGLE_ADS_API_VERSION", "26"), "GOOGLE_ADS_API_VERSION"},
		{&SyncGoogleAds{}, with(w, "GOOGLE_ADS_API_URL", "googleads"), "GOOGLE_ADS_API_URL"},
		{&SyncGoogleAds{}, with(w, "GOOGLE_OAUTH_TOKEN_URL", "ftp://x"), "GOOGLE_OAUTH_TOKEN_URL"},
		{&SyncGoogleAds{}, with(w, "GOOGLE_ADS_LOGIN_CUSTOMER_ID", "123"), "GOOGLE_ADS_LOGIN_CUSTOMER_ID"},
		{&SyncGoogleAds{}, with(w, "GA4_API_URL", "nope"), "GA4_API_URL"},
		{&Sync{}, map[string]string{"DATABASE_URL": "postgres://db/x", "QSTASH_TOKEN": "t"}, "SYNC_GOOGLE_ADS_URL"},
		{&Sync{}, map[string]string{"DATABASE_URL": "postgres://db/x", "QSTASH_URL": "qstash"}, "QSTASH_URL"},
		{&Jobs{}, map[string]string{"CONVERSION_REPUBLISH_AFTER": "0s"}, "CONVERSION_REPUBLISH_AFTER"},
		{&Jobs{}, map[string]string{"CONVERSION_BACKLOG_AFTER": "-1h"}, "CONVERSION_BACKLOG_AFTER"},
		{&Dev{}, map[string]string{"QSTASH_TOKEN": "t", "SYNC_GOOGLE_ADS_URL": "https://tunnel.example/api/sync-google-ads"}, "QSTASH_CURRENT_SIGNING_KEY"},
	}
	for _, c := range cases {
		err := LoadFrom(context.Background(), envconfig.MapLookuper(c.env), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.name) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%T %v: error %v, want one line naming %s", c.cfg, c.env, err, c.name)
		}
	}
	// The edges that are allowed.
	for _, env := range []map[string]string{
		with(w, "QSTASH_RETRIES", "0"), with(w, "QSTASH_RETRIES", fmt.Sprint(MaxQStashRetries)),
		with(w, "GOOGLE_ADS_CLIENT_ID", "id", "GOOGLE_ADS_CLIENT_SECRET", "s", "GOOGLE_ADS_REFRESH_TOKEN", "r", "GOOGLE_ADS_LOGIN_CUSTOMER_ID", "123-456-7890"),
	} {
		var cfg SyncGoogleAds
		if err := LoadFrom(context.Background(), envconfig.MapLookuper(env), &cfg); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
}

func TestConversionSecretsAreNeverPrinted(t *testing.T) {
	cfg := SyncGoogleAds{
		Delivery:  QStashDelivery{CurrentSigningKey: "sig_cur-s3cret", NextSigningKey: "sig_next-s3cret"},
		GoogleAds: GoogleAds{ClientID: "id", ClientSecret: "client-s3cret", RefreshToken: "refresh-s3cret", DeveloperToken: "dev-s3cret"},
	}
	pub := QStashPublish{Token: "qstash-s3cret"}
	j, _ := json.Marshal(cfg)
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "cfg", cfg, "publish", pub)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %v", cfg, cfg, cfg, pub), string(j), logs.String()} {
		if strings.Contains(out, "s3cret") {
			t.Errorf("a secret is printed: %s", out)
		}
	}
}
