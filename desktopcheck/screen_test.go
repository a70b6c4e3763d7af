package desktopcheck

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writePNG(t *testing.T, img image.Image) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "screen.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	return path
}

// A black screen, a one-colour one and one with a mouse cursor on it are
// blank; a login box with text on a gradient is not.
func TestBlankScreenshots(t *testing.T) {
	black := image.NewRGBA(image.Rect(0, 0, 1280, 800))
	for i := range black.Pix {
		if i%4 == 3 {
			black.Pix[i] = 255
		}
	}
	grey := image.NewRGBA(image.Rect(0, 0, 1280, 800))
	fill(grey, grey.Bounds(), color.RGBA{0x30, 0x30, 0x30, 255})
	cursor := image.NewRGBA(image.Rect(0, 0, 1280, 800))
	fill(cursor, cursor.Bounds(), color.RGBA{0, 0, 0, 255})
	fill(cursor, image.Rect(640, 400, 652, 420), color.RGBA{255, 255, 255, 255})
	fill(cursor, image.Rect(641, 401, 651, 418), color.RGBA{200, 200, 200, 255})
	fill(cursor, image.Rect(642, 402, 650, 416), color.RGBA{100, 100, 100, 255})
	for name, img := range map[string]image.Image{"black": black, "grey": grey, "cursor": cursor, "text-mode": image.NewRGBA(image.Rect(0, 0, 720, 400))} {
		s, err := ReadScreen(writePNG(t, img))
		if err != nil {
			t.Fatal(err)
		}
		if s.Blank() == "" {
			t.Errorf("%s: %+v judged not blank", name, s)
		}
	}

	// A greeter: a gradient background, a panel, a box with "text" in it.
	login := image.NewRGBA(image.Rect(0, 0, 1280, 800))
	for y := 0; y < 800; y++ {
		fill(login, image.Rect(0, y, 1280, y+1), color.RGBA{uint8(20 + y/8), 30, uint8(60 + y/10), 255})
	}
	fill(login, image.Rect(0, 0, 1280, 32), color.RGBA{0, 0, 0, 255})
	fill(login, image.Rect(490, 300, 790, 500), color.RGBA{240, 240, 240, 255})
	for x := 510; x < 770; x += 7 {
		fill(login, image.Rect(x, 330, x+4, 342), color.RGBA{20, 20, 20, 255})
	}
	s, err := ReadScreen(writePNG(t, login))
	if err != nil {
		t.Fatal(err)
	}
	if why := s.Blank(); why != "" {
		t.Errorf("a login screen judged blank: %s (%+v)", why, s)
	}
	if s.Width != 1280 || s.Height != 800 || s.Colours < 50 {
		t.Errorf("measured %+v", s)
	}

	bad := filepath.Join(t.TempDir(), "bad.png")
	os.WriteFile(bad, []byte("P6 not a png"), 0o644)
	if _, err := ReadScreen(bad); err == nil || !strings.Contains(err.Error(), "bad.png") {
		t.Errorf("not a PNG: %v", err)
	}
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// A settled screen differs from itself by a clock's digits at most; a
// desktop still drawing its wallpaper differs by most of its pixels.
func TestDifference(t *testing.T) {
	desk := image.NewRGBA(image.Rect(0, 0, 1280, 800))
	fill(desk, desk.Bounds(), color.RGBA{0, 0x40, 0x60, 255})
	fill(desk, image.Rect(0, 0, 1280, 28), color.RGBA{0xf0, 0xf0, 0xf0, 255})
	clock := image.NewRGBA(desk.Bounds())
	copy(clock.Pix, desk.Pix)
	fill(clock, image.Rect(1210, 4, 1270, 24), color.RGBA{0x20, 0x20, 0x20, 255}) // the minute changed
	drawing := image.NewRGBA(desk.Bounds())
	fill(drawing, drawing.Bounds(), color.RGBA{0, 0, 0, 255})
	fill(drawing, image.Rect(0, 0, 1280, 28), color.RGBA{0xf0, 0xf0, 0xf0, 255})
	small := image.NewRGBA(image.Rect(0, 0, 640, 480))

	a := writePNG(t, desk)
	for _, c := range []struct {
		name     string
		other    image.Image
		min, max float64
	}{
		{"same", desk, 0, 0},
		{"clock", clock, 0.001, 0.002},
		{"wallpaper not drawn yet", drawing, 0.9, 1},
		{"another mode", small, 1, 1},
	} {
		d, err := Difference(a, writePNG(t, c.other))
		if err != nil {
			t.Fatal(err)
		}
		if d < c.min || d > c.max {
			t.Errorf("%s: difference %.4f, want %.4f-%.4f", c.name, d, c.min, c.max)
		}
	}
	if _, err := Difference(a, filepath.Join(t.TempDir(), "missing.png")); err == nil {
		t.Error("a missing screenshot gave no error")
	}
}

// A session screen with its panels laid out but nothing in them, on black
// (mate's first check), is not a drawn desktop; one with a wallpaper and
// a panel with text is.
func TestUndrawnSession(t *testing.T) {
	empty := image.NewRGBA(image.Rect(0, 0, 1280, 800))
	fill(empty, empty.Bounds(), color.RGBA{0, 0, 0, 255})
	fill(empty, image.Rect(0, 0, 1280, 25), color.RGBA{0xd6, 0xd6, 0xd6, 255})
	fill(empty, image.Rect(0, 775, 1280, 800), color.RGBA{0xd6, 0xd6, 0xd6, 255})
	fill(empty, image.Rect(0, 25, 1280, 26), color.RGBA{0xb0, 0xb0, 0xb0, 255})
	black := image.NewRGBA(image.Rect(0, 0, 1280, 800)) // wallpaper not drawn yet, panel and icons drawn
	fill(black, black.Bounds(), color.RGBA{0, 0, 0, 255})
	fill(black, image.Rect(0, 0, 1280, 26), color.RGBA{0xf0, 0xf0, 0xf0, 255})
	for i := 0; i < 40; i++ {
		fill(black, image.Rect(20+i*3, 40, 23+i*3, 100), color.RGBA{uint8(i * 6), 0x80, 0xc0, 255})
	}
	desk := image.NewRGBA(image.Rect(0, 0, 1280, 800))
	for y := 0; y < 800; y++ {
		fill(desk, image.Rect(0, y, 1280, y+1), color.RGBA{0, uint8(0x30 + y/16), uint8(0x50 + y/10), 255})
	}
	fill(desk, image.Rect(0, 0, 1280, 26), color.RGBA{0xf0, 0xf0, 0xf0, 255})
	for x := 10; x < 110; x += 6 {
		fill(desk, image.Rect(x, 8, x+4, 18), color.RGBA{0x20, 0x20, 0x20, 255})
	}
	for name, c := range map[string]struct {
		img   image.Image
		drawn bool
	}{"empty panels on black": {empty, false}, "black wallpaper": {black, false}, "desktop": {desk, true}} {
		s, err := ReadScreen(writePNG(t, c.img))
		if err != nil {
			t.Fatal(err)
		}
		if why := s.Undrawn(); (why == "") != c.drawn {
			t.Errorf("%s: %+v: Undrawn %q", name, s, why)
		}
		if s.Blank() != "" {
			t.Errorf("%s: judged blank, but it is not one colour: %s", name, s.Blank())
		}
	}
}
