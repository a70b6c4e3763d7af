package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/rs/zerolog"

	"github.com/debian-atomic/builder/schedule"
	"github.com/debian-atomic/builder/variants"
)

// buildParallel builds vs with the session, siblings side by side, and
// logs every failure again at the end, where it is seen.
func (s *Session) buildParallel(ctx context.Context, vs []*variants.Variant) ([]Report, error) {
	jobs, err := schedule.Jobs()
	if err != nil {
		return nil, err
	}
	if len(vs) > 1 {
		s.cfg.Log.Info().Int("jobs", jobs).Int("variants", len(vs)).Msgf("building %d variants, up to %d at once (%s)", len(vs), jobs, schedule.JobsEnv)
	}
	// The host checker caches tool versions in a map: one caller at a time.
	s.host = &syncHost{h: s.host}
	reports, errs := schedule.Run(ctx, vs, jobs, s.build)
	for i := range reports {
		if reports[i].Variant == "" {
			reports[i] = Report{Variant: vs[i].Name, Ref: vs[i].Ref}
		}
	}
	var failed []error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, err)
			if len(vs) > 1 {
				s.cfg.Log.Error().Str("variant", vs[i].Name).Err(err).Msg(vs[i].Name + " failed")
			}
		}
	}
	return reports, errors.Join(failed...)
}

// syncHost serialises a HostChecker.
type syncHost struct {
	mu sync.Mutex
	h  HostChecker
}

func (s *syncHost) Ensure(ctx context.Context, reqs []Requirement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.Ensure(ctx, reqs)
}

func (s *syncHost) ToolVersion(ctx context.Context, tool string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.ToolVersion(ctx, tool)
}

// consoleWriter is the human log: the variant a line is about comes first,
// so the lines of variants built side by side stay readable.
func consoleWriter(f *os.File) zerolog.ConsoleWriter {
	return zerolog.ConsoleWriter{Out: f, TimeFormat: "15:04:05",
		PartsOrder:    []string{zerolog.TimestampFieldName, zerolog.LevelFieldName, "variant", zerolog.MessageFieldName},
		FieldsExclude: []string{"variant"},
		FormatPartValueByName: func(v any, name string) string {
			if name == "variant" && v != nil {
				return fmt.Sprintf("[%v]", v)
			}
			return ""
		},
	}
}
