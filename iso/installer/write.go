package installer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
	"unsafe"
)

const (
	chunk      = 4 << 20
	blkZeroOut = 0x127f // BLKZEROOUT: _IO(0x12, 127)
	blkGetSize = 0x80081272
	tailBytes  = 1 << 20
)

// Progress receives the bytes written so far.
type Progress func(done, total int64)

// Write copies the raw image src onto the disk dst. Runs of zeros in the
// image become BLKZEROOUT requests (the drive or the hypervisor zeroes
// them without the data crossing the bus; a plain write where the ioctl
// is missing), so stale data never shows through the new filesystems;
// the disk's last MiB is zeroed too, so an old backup GPT there cannot
// confuse the partition tools before the first boot moves it. dst is
// opened with O_EXCL: the kernel itself refuses a disk with a mounted
// partition.
func Write(src, dst string, progress Progress) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	total := st.Size()
	out, err := os.OpenFile(dst, os.O_WRONLY|syscall.O_EXCL, 0)
	if err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("%s is in use (the kernel refused to open it exclusively): nothing was written", dst)
		}
		return err
	}
	defer out.Close()
	size, err := deviceSize(out)
	if err != nil {
		return err
	}
	if size < total {
		return fmt.Errorf("%s has %s; the image needs %s: nothing was written", dst, Size(size), Size(total))
	}
	buf := make([]byte, chunk)
	var pos int64
	last := time.Now()
	for pos < total {
		n, rerr := io.ReadFull(in, buf)
		if n > 0 {
			if allZero(buf[:n]) {
				err = zero(out, pos, int64(n))
			} else {
				_, err = out.WriteAt(buf[:n], pos)
			}
			if err != nil {
				return fmt.Errorf("writing %s at %d: %w", dst, pos, err)
			}
			pos += int64(n)
		}
		if progress != nil && (time.Since(last) > 5*time.Second || pos == total) {
			progress(pos, total)
			last = time.Now()
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("reading the image: %w", rerr)
		}
	}
	if pos != total {
		return fmt.Errorf("the image ended after %d of %d bytes", pos, total)
	}
	if size-tailBytes >= total {
		if err := zero(out, size-tailBytes, tailBytes); err != nil {
			return fmt.Errorf("clearing the end of %s: %w", dst, err)
		}
	}
	return out.Sync()
}

// deviceSize is a block device's size (BLKGETSIZE64), or a file's.
func deviceSize(f *os.File) (int64, error) {
	var n uint64
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), blkGetSize, uintptr(unsafe.Pointer(&n))); e == 0 {
		return int64(n), nil
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// zero clears length bytes at off: BLKZEROOUT on a block device, writes
// of zeros elsewhere.
func zero(f *os.File, off, length int64) error {
	r := [2]uint64{uint64(off), uint64(length)}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), blkZeroOut, uintptr(unsafe.Pointer(&r[0]))); e == 0 {
		return nil
	}
	z := make([]byte, min(length, chunk))
	for length > 0 {
		n := min(length, int64(len(z)))
		if _, err := f.WriteAt(z[:n], off); err != nil {
			return err
		}
		off += n
		length -= n
	}
	return nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
