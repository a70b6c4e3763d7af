package image

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/debian-atomic/builder/build/run"
)

// TreeMiB is the size of a commit's files (ostree ls -R), in MiB.
func TreeMiB(ctx context.Context, runner run.Runner, repo, ref string) (int, error) {
	out, err := runner.Run(ctx, run.Cmd{Args: []string{"ostree", "--repo=" + repo, "ls", "-R", ref}, Quiet: true})
	if err != nil {
		return 0, err
	}
	return sumRegular(out), nil
}

// sumRegular adds the sizes of the regular files in `ostree ls -R` output
// ("-00644 0 0   1234 /usr/bin/x"), rounded up to MiB.
func sumRegular(out []byte) int {
	var total int64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || !strings.HasPrefix(f[0], "-") {
			continue
		}
		n, _ := strconv.ParseInt(f[3], 10, 64)
		total += n
	}
	return int((total + 1<<20 - 1) >> 20)
}

// NeededMiB is the smallest disk a tree of treeMiB deploys to with room to
// work: the deployment (whose files share the repository's objects), the
// kernel and initramfs in /boot, the ESP, and a second deployment's changes
// on the first upgrade.
func NeededMiB(treeMiB int) int {
	return treeMiB*5/4 + 1536
}

// checkFits says, before anything is written, when the variant's tree does
// not fit the disk size the settings ask for.
func checkFits(ctx context.Context, runner run.Runner, repo, ref string, c Config, name string) error {
	tree, err := TreeMiB(ctx, runner, repo, ref)
	if err != nil {
		return err
	}
	return fitError(c, name, tree)
}

func fitError(c Config, name string, tree int) error {
	if need := NeededMiB(tree); c.SizeMiB() < need {
		file := c.file
		if file == "" {
			file = "images/" + name + ".yaml"
		}
		return fmt.Errorf("%s: field \"disk-size\": %s is too small for %s, whose tree is %d MiB: set disk-size: %dG or more", file, c.DiskSize, name, tree, (need+1023)/1024)
	}
	return nil
}
