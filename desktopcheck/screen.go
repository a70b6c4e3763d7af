// Package desktopcheck proves that a desktop variant works: it builds the
// variant's image with an automatic login, boots it in QEMU with a graphics
// device, and checks, with deadlines, the user's session and the display
// manager's greeter, from the guest's processes and from screenshots.
package desktopcheck

import (
	"fmt"
	"image"
	"image/png"
	"os"
)

// Screen is what a screenshot shows, in numbers.
type Screen struct {
	Width, Height int
	Colours       int     // distinct colours (up to 4096 are counted)
	Dominant      float64 // share of pixels in the most common colour
}

// Blank says why a screen shows nothing a user could use ("" when it
// does): one colour, or nearly every pixel the same (a black screen with a
// cursor, an empty background before the greeter draws).
func (s Screen) Blank() string {
	switch {
	case s.Width < 320 || s.Height < 200:
		return fmt.Sprintf("the screen is %dx%d: no graphical mode", s.Width, s.Height)
	case s.Colours <= 2:
		return fmt.Sprintf("the screen has %d colour(s)", s.Colours)
	case s.Dominant >= 0.995:
		return fmt.Sprintf("%.1f%% of the screen is one colour", 100*s.Dominant)
	}
	return ""
}

// Undrawn says why a session's screen is not a drawn desktop yet ("" when
// it is). Every desktop checked draws a wallpaper and panels with text and
// icons; under TCG it can hold still for 15 s half drawn (mate's first
// check: two empty grey panels on black, 3 colours, while its applets and
// Caja's desktop loaded), so a few flat colours or one colour over 90 % of
// the screen is not a desktop yet.
func (s Screen) Undrawn() string {
	if why := s.Blank(); why != "" {
		return why
	}
	switch {
	case s.Colours < 32:
		return fmt.Sprintf("the screen has only %d colours: no wallpaper, text or icons drawn yet", s.Colours)
	case s.Dominant >= 0.9:
		return fmt.Sprintf("%.1f%% of the screen is one colour: the desktop's background is not drawn", 100*s.Dominant)
	}
	return ""
}

// ReadScreen measures a PNG screenshot.
func ReadScreen(path string) (Screen, error) {
	f, err := os.Open(path)
	if err != nil {
		return Screen{}, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return Screen{}, fmt.Errorf("%s: %w", path, err)
	}
	return measure(img), nil
}

func measure(img image.Image) Screen {
	b := img.Bounds()
	counts := map[uint32]int{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			c := r>>8<<16 | g>>8<<8 | bl>>8
			if _, ok := counts[c]; ok || len(counts) < 4096 {
				counts[c]++
			}
		}
	}
	most := 0
	for _, n := range counts {
		most = max(most, n)
	}
	s := Screen{Width: b.Dx(), Height: b.Dy(), Colours: len(counts)}
	if n := b.Dx() * b.Dy(); n > 0 {
		s.Dominant = float64(most) / float64(n)
	}
	return s
}

// Difference is the share of pixels that differ between two PNG
// screenshots (1 when their sizes differ).
func Difference(a, b string) (float64, error) {
	var imgs [2]image.Image
	for i, path := range []string{a, b} {
		f, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		imgs[i], err = png.Decode(f)
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
	}
	ba, bb := imgs[0].Bounds(), imgs[1].Bounds()
	if ba.Size() != bb.Size() {
		return 1, nil
	}
	n, differ := ba.Dx()*ba.Dy(), 0
	if n == 0 {
		return 0, nil
	}
	for y := 0; y < ba.Dy(); y++ {
		for x := 0; x < ba.Dx(); x++ {
			r1, g1, b1, _ := imgs[0].At(ba.Min.X+x, ba.Min.Y+y).RGBA()
			r2, g2, b2, _ := imgs[1].At(bb.Min.X+x, bb.Min.Y+y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 {
				differ++
			}
		}
	}
	return float64(differ) / float64(n), nil
}
