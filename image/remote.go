package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/debian-atomic/builder/build/run"
	"github.com/debian-atomic/builder/ostreeops"
)

// The upgrade timer's units, written into the deployment's /etc when the
// image settings say auto-update: true.
const (
	UpgradeService = "debian-atomic-upgrade.service"
	UpgradeTimer   = "debian-atomic-upgrade.timer"
)

// upgradeServiceUnit stages the upgrade: ostree-finalize-staged.service
// writes the new deployment (and grub.cfg) at the next shutdown, so a
// machine is never left half-deployed. Output goes to the journal.
const upgradeServiceUnit = `# Written by debian-atomic (image setting auto-update: true).
[Unit]
Description=Download and stage an OSTree upgrade for the next boot
Documentation=man:ostree-admin-upgrade(1)
Wants=network-online.target
After=network-online.target
ConditionPathExists=/run/ostree-booted

[Service]
Type=oneshot
ExecStart=/usr/bin/ostree admin upgrade --stage
`

// upgradeTimerUnit checks daily; the randomized delay spreads machines over
// the day so the server sees no stampede, and Persistent catches up on a
// check missed while the machine was off.
const upgradeTimerUnit = `# Written by debian-atomic (image setting auto-update: true).
[Unit]
Description=Daily check for an OSTree upgrade, staged for the next boot

[Timer]
OnCalendar=daily
RandomizedDelaySec=6h
Persistent=true

[Install]
WantedBy=timers.target
`

// dhcpNetwork gives wired interfaces an address from DHCP, for images of
// variants that bring no network manager of their own: a machine that
// updates itself needs the network.
const dhcpNetwork = `# Written by debian-atomic: DHCP on wired interfaces (systemd-networkd).
[Match]
Type=ether

[Network]
DHCP=yes
`

// remoteName is the remote's name: the settings' or the variant's os-name.
func (o Options) remoteName() string {
	if o.Config.Remote != nil && o.Config.Remote.Name != "" {
		return o.Config.Remote.Name
	}
	return o.OSName
}

// refspec is what the deployment's origin names: REMOTE:REF with a remote,
// so `ostree admin upgrade` pulls from it; the bare ref without.
func (o Options) refspec() string {
	if o.Config.Remote == nil {
		return o.Ref
	}
	return o.remoteName() + ":" + o.Ref
}

// addRemote configures the sysroot repository's remote, with GPG
// verification of commits and summary unless the settings say unsigned.
// --gpg-import puts the key in REPO/NAME.trustedkeys.gpg, which the
// machine's ostree reads as /ostree/repo/NAME.trustedkeys.gpg.
func (o Options) addRemote(ctx context.Context, repo string) error {
	r := o.Config.Remote
	args := []string{"ostree", "remote", "add", "--repo=" + repo}
	if r.Unsigned {
		args = append(args, "--no-gpg-verify", "--set=gpg-verify-summary=false")
	} else {
		if r.GPGKey == "" {
			return fmt.Errorf("the remote %s has no public key file", o.remoteName())
		}
		args = append(args, "--set=gpg-verify=true", "--set=gpg-verify-summary=true", "--gpg-import="+r.GPGKey)
	}
	args = append(args, o.remoteName(), r.URL)
	if _, err := o.Runner.Run(ctx, run.Cmd{Args: args, Quiet: true}); err != nil {
		return fmt.Errorf("adding the remote %s: %w", o.remoteName(), err)
	}
	return nil
}

// pull brings Ref's commit into the sysroot repository under the name the
// origin will use (refs/remotes/REMOTE/REF with a remote) and returns it.
// For a remote that verifies signatures the commit comes from the publish
// repository with its signature, checked against the image's key: the
// machine's ostree verifies the booted commit too (ostree admin status
// fails on an unsigned one), and a wrong gpg-key shows here, not on the
// machine.
func (o Options) pull(ctx context.Context, repo string) (string, error) {
	r := o.Config.Remote
	sys := ostreeops.Repo{Path: repo, Runner: o.Runner}
	if r == nil || r.Unsigned {
		args := []string{"ostree", "--repo=" + repo, "pull-local"}
		if r != nil {
			args = append(args, "--remote="+o.remoteName())
		}
		args = append(args, o.Repo, o.Ref)
		if _, err := o.Runner.Run(ctx, run.Cmd{Args: args, Quiet: true}); err != nil {
			return "", err
		}
		commit, ok := sys.RevParse(ctx, o.refspec())
		if !ok {
			return "", fmt.Errorf("%s is not in %s", o.Ref, o.Repo)
		}
		return commit, nil
	}
	commit, ok := ostreeops.Repo{Path: o.Repo, Runner: o.Runner}.RevParse(ctx, o.Ref)
	if !ok {
		return "", fmt.Errorf("%s is not in %s", o.Ref, o.Repo)
	}
	pub := ostreeops.Repo{Path: o.Published, Runner: o.Runner}
	if o.Published == "" || !pub.HasCommit(commit) || !pub.HasDetachedMetadata(commit) {
		return "", fmt.Errorf("%w: commit %s of %s is not published signed in %s, and the image's remote %s verifies signatures: publish it first (go run mage.go publish)",
			ErrNotPublished, commit, o.Ref, o.Published, o.remoteName())
	}
	args := []string{"ostree", "--repo=" + repo, "pull-local", "--remote=" + o.remoteName(), "--gpg-verify", o.Published, commit}
	if _, err := o.Runner.Run(ctx, run.Cmd{Args: args, Quiet: true}); err != nil {
		return "", fmt.Errorf("the published commit %s does not verify with the image's key %s: %w", commit, r.GPGKey, err)
	}
	if _, err := o.Runner.Run(ctx, run.Cmd{Args: []string{"ostree", "--repo=" + repo, "refs", "--create=" + o.refspec(), commit}, Quiet: true}); err != nil {
		return "", err
	}
	return commit, nil
}

// ErrNotPublished: an image whose remote verifies signatures needs its
// commit published (signed) first.
var ErrNotPublished = errors.New("not published")

// enable runs `systemctl --root=DEPLOY enable UNITS`, which follows the
// units' [Install] sections (Also=, Alias=) as on the machine.
func (o Options) enable(ctx context.Context, deploy string, units ...string) error {
	args := append([]string{"systemctl", "--root=" + deploy, "--quiet", "enable"}, units...)
	_, err := o.Runner.Run(ctx, run.Cmd{Args: args, Quiet: true})
	return err
}

// writeUpgradeTimer installs and enables the daily upgrade timer in the
// deployment's /etc, so it is the machine's own configuration (kept
// across upgrades by the /etc merge).
func (o Options) writeUpgradeTimer(ctx context.Context, deploy string) error {
	dir := filepath.Join(deploy, "etc", "systemd", "system")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, body := range map[string]string{UpgradeService: upgradeServiceUnit, UpgradeTimer: upgradeTimerUnit} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return o.enable(ctx, deploy, UpgradeTimer)
}

// ensureNetwork gives a deployment without a network manager DHCP on its
// wired interfaces through systemd-networkd; one with NetworkManager, or
// with .network files of its own, is left alone.
func (o Options) ensureNetwork(ctx context.Context, deploy string) (bool, error) {
	for _, p := range []string{"usr/sbin/NetworkManager", "usr/bin/NetworkManager"} {
		if _, err := os.Lstat(filepath.Join(deploy, p)); err == nil {
			return false, nil
		}
	}
	if _, err := os.Stat(filepath.Join(deploy, "usr/lib/systemd/system/systemd-networkd.service")); err != nil {
		return false, nil
	}
	dir := filepath.Join(deploy, "etc", "systemd", "network")
	if own, _ := filepath.Glob(filepath.Join(dir, "*.network")); len(own) > 0 {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(dir, "80-debian-atomic-dhcp.network"), []byte(dhcpNetwork), 0o644); err != nil {
		return false, err
	}
	return true, o.enable(ctx, deploy, "systemd-networkd.service", "systemd-networkd-wait-online.service")
}
