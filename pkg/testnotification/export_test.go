package testnotification

import "time"

// SetClock injects the time the default message names.
func SetClock(h *Handler, now func() time.Time) { h.now = now }
