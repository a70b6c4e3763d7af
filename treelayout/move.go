package treelayout

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// MoveTree renames src to dst; when src is a lower folder of an overlay
// (EXDEV), it copies the tree and removes the original, as mv does.
func MoveTree(src, dst string) error {
	err := os.Rename(src, dst)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	if err := copyTree(src, dst); err != nil {
		return fmt.Errorf("moving %s to %s: %w", src, dst, err)
	}
	return os.RemoveAll(src)
}

// copyTree copies folders, files, symlinks and special files with their
// owners and modes (all a commit records), keeping hardlinks within the tree.
func copyTree(src, dst string) error {
	links := map[uint64]string{}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		switch {
		case fi.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil && !os.IsExist(err) {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if first, ok := links[st.Ino]; ok && st.Nlink > 1 {
				return os.Link(first, target)
			}
			if err := CopyFile(path, target); err != nil {
				return err
			}
			links[st.Ino] = target
		default:
			if err := syscall.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return err
			}
		}
		if err := os.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return syscall.Chmod(target, st.Mode&0o7777)
		}
		return nil
	})
}

func CopyFile(src, dst string) error {
	data, err := os.Open(src)
	if err != nil {
		return err
	}
	defer data.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := out.ReadFrom(data); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
