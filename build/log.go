package build

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// Durations in every log line of the process are seconds, as floats, also
// for loggers made without NewLogger (tests, other packages).
func init() {
	zerolog.DurationFieldUnit, zerolog.DurationFieldInteger = time.Second, false
}

// HumanOutput reports whether logs go to a person: a terminal, outside CI.
func HumanOutput(f *os.File) bool {
	return os.Getenv("CI") == "" && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// NewLogger logs for people on a terminal and as JSON lines otherwise.
// DEBIAN_ATOMIC_DEBUG=1 adds every line the build's commands print.
func NewLogger(f *os.File) zerolog.Logger {
	level := zerolog.InfoLevel
	if os.Getenv("DEBIAN_ATOMIC_DEBUG") != "" {
		level = zerolog.DebugLevel
	}
	var w io.Writer = f
	if HumanOutput(f) {
		w = consoleWriter(f)
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// Summarize ends a build: a table for people, one JSON event otherwise.
func Summarize(f *os.File, log zerolog.Logger, reports []Report) {
	if !HumanOutput(f) {
		for _, r := range reports {
			log.Info().Str("variant", r.Variant).Str("ref", r.Ref).Str("commit", r.Commit).
				Str("version", r.Version).Bool("new_commit", r.NewCommit).Int("ran", r.Ran()).
				Dur("duration", r.Duration).Interface("steps", r.Steps).Msg("summary")
		}
		return
	}
	fmt.Fprint(f, SummaryTable(reports))
}

// SummaryTable renders what ran, what was cached, and how long each took.
func SummaryTable(reports []Report) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIANT\tSTEP\tRESULT\tTIME\tSIZE\t")
	for _, r := range reports {
		for _, s := range r.Steps {
			res := "built"
			if s.Cached {
				res = "cached"
			}
			size := "-"
			if s.Size > 0 {
				size = fmt.Sprintf("%.0f MiB", float64(s.Size)/(1<<20))
			}
			name := s.Name
			if name == "" {
				name = s.Step
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", r.Variant, name, res, s.Duration.Round(time.Millisecond), size)
		}
		commit := "no new commit"
		if r.NewCommit {
			commit = "new commit"
		}
		fmt.Fprintf(tw, "%s\ttotal\t%s\t%s\t%s %s\t\n", r.Variant, commit, r.Duration.Round(time.Millisecond), r.Ref, r.Version)
	}
	tw.Flush()
	return b.String()
}

// Durations are seconds, as floats, everywhere the builder writes JSON: the
// logs (zerolog.DurationFieldUnit, set in init), the summary and its
// steps, and any report marshalled elsewhere (bench, status).

// MarshalJSON writes the step's duration in seconds.
func (s StepReport) MarshalJSON() ([]byte, error) {
	type plain StepReport
	return json.Marshal(struct {
		plain
		Duration float64 `json:"duration"`
	}{plain(s), s.Duration.Seconds()})
}

// MarshalJSON writes the variant's duration in seconds.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	return json.Marshal(struct {
		plain
		Duration float64 `json:"duration"`
	}{plain(r), r.Duration.Seconds()})
}
