package desktopcheck

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RunAll checks every desktop in Desktops that has a variant file, one
// after the other (each boot takes both cores under TCG); a failure does
// not stop the others. With gallery set, each passing desktop's session
// screenshot is written there as a small PNG (NAME.png).
func RunAll(ctx context.Context, o Options, gallery string, w io.Writer) ([]Result, error) {
	var results []Result
	var failed []string
	for _, d := range Desktops {
		if _, err := os.Stat(filepath.Join(o.Config.VariantsDir, d.Variant+".yaml")); err != nil {
			continue
		}
		one := o
		one.Name = d.Variant
		res, err := Run(ctx, one)
		results = append(results, res)
		if err != nil {
			failed = append(failed, d.Variant)
			fmt.Fprintf(w, "%s: FAILED: %v\n", d.Variant, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if gallery != "" {
			if err := Thumbnail(res.SessionShot, filepath.Join(gallery, d.Variant+".png"), 480); err != nil {
				return results, err
			}
		}
	}
	WriteTable(w, results)
	if len(failed) > 0 {
		return results, fmt.Errorf("desktop checks failed: %s", strings.Join(failed, ", "))
	}
	return results, nil
}

// WriteTable prints the results as a Markdown table.
func WriteTable(w io.Writer, results []Result) {
	fmt.Fprintln(w, "| desktop | build | packages | image (allocated) | image build | boot to serial login | boot to session | greeter after logout | failed units |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range results {
		failed := "none"
		if r.Greeter == 0 {
			failed = "not reached"
		} else if len(r.Failed) > 0 {
			failed = strings.Join(r.Failed, ", ")
		}
		fmt.Fprintf(w, "| %s | %s | %d | %.1f GiB | %s | %s | %s | %s | %s |\n", r.Name, r.Build.Round(time.Second), r.Packages,
			float64(r.ImageBytes)/(1<<30), r.Image.Round(time.Second), dur(r.Login), dur(r.Session), dur(r.Greeter), failed)
	}
}

func dur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.String()
}

// Thumbnail writes a box-filtered copy of a PNG, width pixels wide.
func Thumbnail(src, dst string, width int) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	b := img.Bounds()
	if b.Dx() < width {
		width = b.Dx()
	}
	height := b.Dy() * width / b.Dx()
	out := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := 0; y < height; y++ {
		y0, y1 := b.Min.Y+y*b.Dy()/height, b.Min.Y+(y+1)*b.Dy()/height
		for x := 0; x < width; x++ {
			x0, x1 := b.Min.X+x*b.Dx()/width, b.Min.X+(x+1)*b.Dx()/width
			var r, g, bl, n uint32
			for yy := y0; yy < max(y1, y0+1); yy++ {
				for xx := x0; xx < max(x1, x0+1); xx++ {
					cr, cg, cb, _ := img.At(xx, yy).RGBA()
					r, g, bl, n = r+cr>>8, g+cg>>8, bl+cb>>8, n+1
				}
			}
			out.SetRGBA(x, y, color.RGBA{uint8(r / n), uint8(g / n), uint8(bl / n), 255})
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	o, err := os.Create(tmp)
	if err != nil {
		return err
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(o, out); err != nil {
		o.Close()
		os.Remove(tmp)
		return err
	}
	if err := o.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
