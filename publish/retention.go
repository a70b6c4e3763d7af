package publish

import "github.com/debian-atomic/builder/ostreeops"

// retention says what a retention depth removes from the publish
// repository: every commit that is not among the newest keep commits of a
// ref's history, and every static delta that starts or ends at a commit
// that is not kept (a delta to a pruned commit leads nowhere; one from it
// serves only machines older than the retention, which pull whole).
//
// chains holds each ref's history, newest first, as far as parents are
// present; present is every commit in the repository.
func retention(chains map[string][]string, present []string, deltas []ostreeops.Delta, keep int) (commits []string, gone []ostreeops.Delta) {
	kept := map[string]bool{}
	for _, chain := range chains {
		for i, c := range chain {
			if i < keep {
				kept[c] = true
			}
		}
	}
	for _, c := range present {
		if !kept[c] {
			commits = append(commits, c)
		}
	}
	for _, d := range deltas {
		if !kept[d.From] || !kept[d.To] {
			gone = append(gone, d)
		}
	}
	return commits, gone
}

// deltaFrom decides where a new commit's delta starts. ancestors are the
// built commit's parents in the output repository, nearest first. The delta
// comes from the previously published commit when it is among them within
// the retention depth (otherwise it is pruned at once, and with it any
// delta from it); bring is how many of those parents come along into the
// publish repository, so its history keeps every parent it retains.
func deltaFrom(old string, ancestors []string, keep int) (from string, bring int) {
	for i, a := range ancestors {
		if i+1 >= keep {
			return "", keep - 1
		}
		if a == old {
			return old, i
		}
	}
	return "", min(len(ancestors), keep-1)
}
