package build

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// Asking a tool its version costs a process start (mmdebstrap, a Perl
// script, takes 0.3-2 s), which a no-op build cannot afford. The answers are
// kept in the cache, each with a stamp of what could change it: the
// executable's inode, size and times, and dpkg's status file, which changes
// whenever a host package (a library the tool loads) is installed or removed.

const toolVersionsFile = "tool-versions.json"

type toolVersion struct {
	Stamp   string `json:"stamp"`
	Version string `json:"version"`
}

// toolStamp says what the version of tool depends on; "" when it cannot
// tell, and then the version is asked every time.
func toolStamp(tool string) string {
	path, err := exec.LookPath(tool)
	if err != nil {
		return ""
	}
	exe, err := os.Stat(path)
	if err != nil {
		return ""
	}
	st, ok := exe.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	stamp := fmt.Sprintf("%s:%d:%d:%d:%d", path, st.Ino, st.Size, st.Mtim.Nano(), st.Ctim.Nano())
	if dpkg, err := os.Stat("/var/lib/dpkg/status"); err == nil {
		stamp += fmt.Sprintf(":%d:%d", dpkg.Size(), dpkg.ModTime().UnixNano())
	}
	return stamp
}

func readToolVersions(cacheDir string) map[string]toolVersion {
	m := map[string]toolVersion{}
	if data, err := os.ReadFile(filepath.Join(cacheDir, toolVersionsFile)); err == nil {
		_ = json.Unmarshal(data, &m) // a damaged file only costs asking again
	}
	return m
}

// writeToolVersions saves m; failing to is harmless (the next run asks).
func writeToolVersions(cacheDir string, m map[string]toolVersion) {
	data, err := json.Marshal(m)
	if err != nil || os.MkdirAll(cacheDir, 0o755) != nil {
		return
	}
	tmp := filepath.Join(cacheDir, toolVersionsFile+".tmp")
	if os.WriteFile(tmp, data, 0o644) == nil {
		_ = os.Rename(tmp, filepath.Join(cacheDir, toolVersionsFile))
	}
}
