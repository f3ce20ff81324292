package ingest

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// UACorpus is a labelled set of User-Agents (testdata/ua/corpus.json).
type UACorpus struct {
	Humans []struct {
		UA     string `json:"ua"`
		Device string `json:"device"`
	} `json:"humans"`
	Bots []struct {
		UA   string `json:"ua"`
		Name string `json:"name"`
	} `json:"bots"`
}

// UAFigures is how ClassifyUserAgent does on a corpus.
type UAFigures struct {
	Humans, Bots int
	// DeviceRight counts humans not called bots whose device type is the label.
	DeviceRight int
	// HumansAsBots counts humans called bots; BotsFound bots called bots.
	HumansAsBots, BotsFound int
	// PerParse is the mean time of one ClassifyUserAgent over the corpus.
	PerParse time.Duration
	// Misses lists what went wrong, for a test to print.
	Misses []string
}

// DeviceRightShare, HumansAsBotsShare and BotsFoundShare are fractions (0..1).
func (f UAFigures) DeviceRightShare() float64  { return share(f.DeviceRight, f.Humans) }
func (f UAFigures) HumansAsBotsShare() float64 { return share(f.HumansAsBots, f.Humans) }
func (f UAFigures) BotsFoundShare() float64    { return share(f.BotsFound, f.Bots) }

func share(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

func (f UAFigures) String() string {
	return fmt.Sprintf("user-agents: device right %.1f %% of %d humans, humans called bots %.2f %%, bots recognised %.1f %% of %d, %.1f µs/parse",
		100*f.DeviceRightShare(), f.Humans, 100*f.HumansAsBotsShare(), 100*f.BotsFoundShare(), f.Bots,
		float64(f.PerParse.Nanoseconds())/1000)
}

// MeasureUACorpus classifies every User-Agent of a corpus (JSON as in
// testdata/ua/corpus.json) without touch information, as for a tracker that
// sends no ctx.touch.
func MeasureUACorpus(corpusJSON []byte) (UAFigures, error) {
	var c UACorpus
	if err := json.Unmarshal(corpusJSON, &c); err != nil {
		return UAFigures{}, fmt.Errorf("user-agent corpus: %w", err)
	}
	f := UAFigures{Humans: len(c.Humans), Bots: len(c.Bots)}
	start := time.Now()
	for _, h := range c.Humans {
		got := ClassifyUserAgent(h.UA, 0)
		switch {
		case got.Bot:
			f.HumansAsBots++
			f.Misses = append(f.Misses, fmt.Sprintf("human called bot: %q", h.UA))
		case got.Device == h.Device:
			f.DeviceRight++
		default:
			f.Misses = append(f.Misses, fmt.Sprintf("%s taken for %s: %q", h.Device, got.Device, h.UA))
		}
	}
	for _, b := range c.Bots {
		if ClassifyUserAgent(b.UA, 0).Bot {
			f.BotsFound++
		} else {
			f.Misses = append(f.Misses, fmt.Sprintf("bot %s not recognised: %q", b.Name, b.UA))
		}
	}
	if n := f.Humans + f.Bots; n > 0 {
		f.PerParse = time.Since(start) / time.Duration(n)
	}
	return f, nil
}

// MeasureUACorpusFile is MeasureUACorpus on a file (make bench reads
// pkg/ingest/testdata/ua/corpus.json).
func MeasureUACorpusFile(path string) (UAFigures, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return UAFigures{}, fmt.Errorf("user-agent corpus: %w", err)
	}
	return MeasureUACorpus(b)
}
