package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/conversions"
	"github.com/opsmantik/opsmantik/pkg/qstashlocal"
	"github.com/opsmantik/opsmantik/pkg/sites"
)

// syncGoogleAdsPath is where `opsmantik dev` mounts functions/sync-google-ads.
const syncGoogleAdsPath = "/api/sync-google-ads"

// Google Ads settings the demo site gets when the worker runs dry, so that a
// visit to the demo page with a click id goes round the whole loop.
const (
	demoCustomerID = "123-456-7890"
	demoAction     = "Qualified lead"
)

// startConversionLoop is the Google Ads loop of `opsmantik dev`: it mounts
// the worker at /api/sync-google-ads and returns the publisher for
// /api/sync and the sweep. Without QSTASH_TOKEN a local QStash (pkg/qstashlocal)
// delivers to this server's own worker; without Google Ads credentials the
// worker runs dry. addr is the address the server listens on; stop closes
// the local QStash.
func startConversionLoop(ctx context.Context, cfg *config.Dev, pool *pgxpool.Pool, logger *slog.Logger, mux *http.ServeMux, addr string) (pub *conversions.Publisher, stop func(), err error) {
	publish, delivery := cfg.Publish, cfg.Delivery
	stop = func() {}
	if !publish.Configured() {
		q, err := qstashlocal.New(qstashlocal.Options{Logger: logger, MaxRetries: max(qstashlocal.DefaultMaxRetries, publish.Retries)})
		if err != nil {
			return nil, nil, err
		}
		stop = func() { _ = q.Close() }
		workerURL := "http://" + addr + syncGoogleAdsPath
		publish.URL, publish.Token, publish.WorkerURL = q.URL(), config.Secret(q.Token()), workerURL
		delivery.CurrentSigningKey, delivery.NextSigningKey = config.Secret(q.CurrentSigningKey()), config.Secret(q.NextSigningKey())
		delivery.WorkerURL = workerURL
		logger.Info(fmt.Sprintf("QSTASH_TOKEN is not set: a local QStash at %s delivers conversions to %s", q.URL(), workerURL))
	}
	worker, err := conversions.NewWorkerWith(pool, delivery, cfg.GoogleAds, cfg.GA4, logger)
	if err == nil {
		pub, err = conversions.NewPublisher(pool, publish, conversions.PublisherOptions{Logger: logger})
	}
	if err == nil && !cfg.GoogleAds.Configured() {
		err = demoAds(ctx, pool, logger)
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	mux.Handle(syncGoogleAdsPath, worker)
	return pub, stop, nil
}

// demoAds gives the demo site placeholder Google Ads settings if it has
// none: with the worker dry, nothing reaches Google.
func demoAds(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	s, err := sites.ByPublicID(ctx, pool, demoSite.PublicID)
	if err != nil {
		return err
	}
	all, err := sites.AdsByID(ctx, pool)
	if err != nil {
		return err
	}
	if all[s.ID].GoogleAds() {
		return nil
	}
	customer, action := demoCustomerID, demoAction
	if _, err := sites.SetAds(ctx, pool, demoSite.PublicID, sites.AdsSettings{GoogleAdsCustomerID: &customer, GoogleAdsConversionAction: &action}); err != nil {
		return errors.Join(errors.New("configure the demo site's Google Ads placeholder"), err)
	}
	logger.Info("demo site: Google Ads set to a placeholder (" + demoCustomerID + ", " + demoAction + ") for the dry run")
	return nil
}
