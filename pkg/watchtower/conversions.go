package watchtower

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/conversions"
	"github.com/opsmantik/opsmantik/pkg/lambdahost"
	"github.com/opsmantik/opsmantik/pkg/telegram"
)

// ConversionBacklog (WT005) fails when conversions stay pending or published
// for longer than after (not counting those waiting for a retry time Google
// named), or when any conversion failed with a configuration error: those
// need an operator (docs/google-ads.md says what to do for each code).
func ConversionBacklog(after time.Duration) Check {
	return Check{Code: "WT005", Name: "CONVERSION_BACKLOG", Level: telegram.Alarm,
		Measure: func(ctx context.Context, db Querier, now time.Time) (Outcome, error) {
			b, err := conversions.MeasureBacklog(ctx, db, now, after)
			if err != nil {
				return Outcome{}, err
			}
			figures := map[string]any{
				"pending": b.Pending, "published": b.Published, "waiting_for_retry": b.Waiting,
				"config_errors": b.ConfigErrors, "after": humanDuration(after),
			}
			if b.Oldest != nil {
				figures["oldest"] = humanDuration(now.Sub(*b.Oldest))
			}
			if len(b.StuckCodes) > 0 {
				figures["stuck_error_codes"] = codeList(b.StuckCodes)
			}
			if len(b.ConfigErrorCodes) > 0 {
				figures["config_error_codes"] = codeList(b.ConfigErrorCodes)
			}
			var parts []string
			if b.Stuck() > 0 {
				parts = append(parts, fmt.Sprintf("%d conversions unfinished for more than %s (%d pending: not handed to QStash, see the sweep's log and QSTASH_TOKEN; %d published: not delivered or the upload keeps failing, see sync-google-ads's log).",
					b.Stuck(), humanDuration(after), b.Pending, b.Published))
			}
			if b.ConfigErrors > 0 {
				parts = append(parts, fmt.Sprintf("%d conversions failed with a configuration error (%s): fix the site's Google settings or the credentials, then re-drive them (docs/google-ads.md).",
					b.ConfigErrors, codeList(b.ConfigErrorCodes)))
			}
			if len(parts) == 0 {
				parts = append(parts, fmt.Sprintf("No conversion unfinished for more than %s and none failed with a configuration error.", humanDuration(after)))
			}
			return Outcome{Failing: b.Failing(), Summary: strings.Join(parts, " "), Figures: figures}, nil
		}}
}

// codeList is "NO_CONVERSION_ACTION_FOUND ×2, UNAUTHORIZED_CUSTOMER ×1",
// most frequent first.
func codeList(m map[string]int64) string {
	codes := make([]string, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		if m[codes[i]] != m[codes[j]] {
			return m[codes[i]] > m[codes[j]]
		}
		return codes[i] < codes[j]
	})
	for i, c := range codes {
		codes[i] = fmt.Sprintf("%s ×%d", c, m[c])
	}
	return strings.Join(codes, ", ")
}

// withConversionSweep runs the conversion sweep before the checks in
// watchtower-cron, so that WT005 judges what the sweep left; the checks run
// even when the sweep fails.
func withConversionSweep(pool *pgxpool.Pool, cfg *config.Watchtower, checks lambdahost.Job) (lambdahost.Job, error) {
	sweep, err := conversions.SweeperFromConfig(pool, cfg.Publish, cfg.Sweep, cfg.Log.Logger())
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		return errors.Join(sweep.Job(ctx), checks(ctx))
	}, nil
}
