package lockresolve

import (
	"strings"

	"github.com/debian-atomic/builder/variants"
)

// pocketOf classifies apt's release description of a version ("Label:
// Version/Archive" per release offering it, comma-separated): security when
// one of them is the security archive (its Label is Debian-Security, or its
// suite ends in -security), else updates when one is a -updates suite, else
// "". A fix that a point release has since folded into the suite is still
// offered by the security archive, so it stays marked security; inSuite
// says that the suite itself (a release of neither kind) offers it too.
func pocketOf(releases string) (pocket string, inSuite bool) {
	for _, rel := range strings.Split(strings.TrimSpace(releases), ", ") {
		label, archive := "", rel
		if i := strings.Index(rel, ":"); i >= 0 {
			label = rel[:i]
		}
		if i := strings.LastIndexAny(rel, "/:"); i >= 0 {
			archive = rel[i+1:]
		}
		switch {
		case strings.EqualFold(label, "Debian-Security") || strings.HasSuffix(archive, "-security"):
			pocket = variants.PocketSecurity
		case strings.HasSuffix(archive, "-updates"):
			if pocket == "" {
				pocket = variants.PocketUpdates
			}
		case rel != "":
			inSuite = true
		}
	}
	return pocket, inSuite
}

// markPockets appends " (security)" or " (updates)" to the changes whose new
// version came from there; origins maps "name version" to the pocket.
func markPockets(c Change, origins map[string]origin) Change {
	for i, l := range c.Changes {
		if strings.HasPrefix(l, "-") {
			continue
		}
		f := strings.Fields(l[1:]) // "name new" or "name old -> new"
		if len(f) < 2 {
			continue
		}
		switch origins[f[0]+" "+f[len(f)-1]].pocket {
		case variants.PocketSecurity:
			c.Changes[i] = l + " (security)"
			c.Security++
		case variants.PocketUpdates:
			c.Changes[i] = l + " (updates)"
		}
	}
	return c
}

// countPockets counts the locked entries ("name version arch") whose version
// only the security archive, or only a -updates suite, has: what following
// them brings that the suite (its last point release) does not.
func countPockets(locked []string, origins map[string]origin) (security, updates int) {
	for _, e := range locked {
		f := strings.Fields(e)
		if len(f) != 3 {
			continue
		}
		o := origins[f[0]+" "+f[1]]
		if o.inSuite {
			continue
		}
		switch o.pocket {
		case variants.PocketSecurity:
			security++
		case variants.PocketUpdates:
			updates++
		}
	}
	return security, updates
}
