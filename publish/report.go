package publish

import (
	"fmt"
	"strings"
	"time"
)

// Text is the short summary `mage publish` prints.
func (r Report) Text() string {
	var b strings.Builder
	sign := "unsigned (signing: none)"
	if r.Signed {
		sign = "signed by " + r.KeyID
	}
	fmt.Fprintf(&b, "published to %s, %s, in %s\n", r.Repo, sign, r.Duration.Round(10*time.Millisecond))
	for _, rr := range r.Refs {
		switch {
		case !rr.NewCommit:
			fmt.Fprintf(&b, "  %-10s %s: %s, nothing new\n", rr.Variant, rr.Ref, short(rr.New))
		case rr.Delta != "":
			fmt.Fprintf(&b, "  %-10s %s: %s -> %s, delta %s (full pull %s, %.1f%%), %s\n", rr.Variant, rr.Ref, short(rr.Old), short(rr.New),
				mib(rr.DeltaSize), mib(rr.CommitSize), 100*float64(rr.DeltaSize)/float64(max(rr.CommitSize, 1)), rr.Duration.Round(10*time.Millisecond))
		default:
			from := "first commit"
			if rr.Old != "" {
				from = short(rr.Old) + " (no delta)"
			}
			fmt.Fprintf(&b, "  %-10s %s: %s -> %s, full pull %s, %s\n", rr.Variant, rr.Ref, from, short(rr.New), mib(rr.CommitSize), rr.Duration.Round(10*time.Millisecond))
		}
	}
	if n := len(r.PrunedCommits) + len(r.PrunedDeltas); n > 0 {
		fmt.Fprintf(&b, "  pruned %d commits and %d deltas beyond the retention depth\n", len(r.PrunedCommits), len(r.PrunedDeltas))
	}
	if !r.Summary {
		b.WriteString("  nothing new: the repository was not changed\n")
	}
	if r.KeyFile != "" {
		fmt.Fprintf(&b, "  clients import the public key %s\n", r.KeyFile)
	}
	return b.String()
}

func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
