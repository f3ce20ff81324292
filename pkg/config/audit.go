package config

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// MaxAuditWindow bounds AUDIT_WINDOW: the audit reads every row received in
// its window, so a window is days, not the whole history.
const MaxAuditWindow = 31 * 24 * time.Hour

// Auditing holds the integrity audit's window and threshold (pkg/audit,
// docs/audit.md).
type Auditing struct {
	// Window is how much received data a run audits, ending at the run.
	Window time.Duration `env:"AUDIT_WINDOW, default=24h"`
	// ThresholdPercent: a check alarms for a site when its anomalies are
	// more than this percentage of the site's rows in the window.
	ThresholdPercent float64 `env:"AUDIT_THRESHOLD_PERCENT, default=1"`
}

// Validate checks that the window is positive and bounded and the
// threshold a percentage.
func (a Auditing) Validate() error {
	if a.Window <= 0 || a.Window > MaxAuditWindow {
		return fmt.Errorf("AUDIT_WINDOW: must be a positive duration up to %s (e.g. 24h), got %s", MaxAuditWindow, a.Window)
	}
	if math.IsNaN(a.ThresholdPercent) || a.ThresholdPercent < 0 || a.ThresholdPercent > 100 {
		return fmt.Errorf("AUDIT_THRESHOLD_PERCENT: must be between 0 and 100, got %v", a.ThresholdPercent)
	}
	return nil
}

// Audit configures functions/audit-integrity.
type Audit struct {
	Database Database
	Log      Log
	Telegram Telegram
	Auditing Auditing
}

func (c *Audit) Validate() error {
	return errors.Join(c.Telegram.Require(), c.Auditing.Validate())
}
