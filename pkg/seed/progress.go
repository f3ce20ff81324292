package seed

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how far a run is: a bar on a terminal, plain lines
// otherwise (at every tenth of the sessions, and at least every ten seconds).
type progress struct {
	w     io.Writer
	total int64
	bar   *progressbar.ProgressBar

	lastTenth int64
	lastLine  time.Duration
}

// lineEvery is the longest a long run goes without a plain progress line.
const lineEvery = 10 * time.Second

func newProgress(w io.Writer, total int64) *progress {
	f, ok := w.(*os.File)
	return newProgressFor(w, total, ok && term.IsTerminal(int(f.Fd())))
}

func newProgressFor(w io.Writer, total int64, terminal bool) *progress {
	p := &progress{w: w, total: total}
	if w != nil && terminal {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("seeding"),
			progressbar.OptionSetItsString("sessions"),
			progressbar.OptionShowIts(),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)
	}
	return p
}

// update reports sessions and rows written after elapsed.
func (p *progress) update(sessions, rows int64, elapsed time.Duration) {
	switch {
	case p.w == nil:
	case p.bar != nil:
		p.bar.Describe(fmt.Sprintf("seeding (%d rows)", rows))
		_ = p.bar.Set64(sessions)
	default:
		tenth := sessions * 10 / p.total
		if tenth == p.lastTenth && elapsed-p.lastLine < lineEvery {
			return
		}
		p.lastTenth, p.lastLine = tenth, elapsed
		rate := 0.0
		if s := elapsed.Seconds(); s > 0 {
			rate = float64(rows) / s
		}
		fmt.Fprintf(p.w, "seed: %d/%d sessions (%d%%), %d rows, %.0f rows/s, %.1fs\n",
			sessions, p.total, sessions*100/p.total, rows, rate, elapsed.Seconds())
	}
}

// done ends the bar; a failed run leaves it where it stopped.
func (p *progress) done(ok bool) {
	if p.bar == nil {
		return
	}
	if ok {
		_ = p.bar.Finish()
		return
	}
	fmt.Fprintln(p.w)
}
