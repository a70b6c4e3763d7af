package bench

import (
	"fmt"
	"html"
	"strings"
	"time"

	"github.com/debian-atomic/builder/build"
)

// stepColors tell the step kinds apart; cached steps are grey.
var stepColors = map[string]string{
	build.StepBootstrap: "#4e79a7", build.StepInstall: "#f28e2b", build.StepPostprocess: "#59a14f", build.StepCommit: "#e15759",
}

// SVG draws each chart as a bar of its steps, left to right, as wide as
// their time, on one time scale, with each step's name and seconds in a
// table below its bar: where the time of a build goes.
func SVG(charts []Chart) string {
	const width, left, barH, lineH = 960.0, 20.0, 26.0, 16.0
	longest := time.Second
	for _, c := range charts {
		longest = max(longest, c.Total, stepsTotal(c.Steps))
	}
	scale := (width - 2*left) / longest.Seconds()
	var body strings.Builder
	y := 30.0
	for _, c := range charts {
		fmt.Fprintf(&body, `<text x="%.0f" y="%.0f" font-size="14" font-weight="bold">%s: %.1f s</text>`+"\n", left, y, html.EscapeString(c.Title), c.Total.Seconds())
		y += 8
		x := left
		for _, s := range c.Steps {
			w := s.Duration.Seconds() * scale
			color := stepColors[s.Step]
			if s.Cached {
				color = "#cccccc"
			}
			fmt.Fprintf(&body, `<rect x="%.1f" y="%.0f" width="%.1f" height="%.0f" fill="%s" stroke="#ffffff"><title>%s %.2f s</title></rect>`+"\n",
				x, y, max(w, 1), barH, color, html.EscapeString(stepName(s)), s.Duration.Seconds())
			if w > 60 {
				fmt.Fprintf(&body, `<text x="%.1f" y="%.0f" font-size="11" fill="#ffffff">%s</text>`+"\n", x+4, y+17, html.EscapeString(clip(stepName(s), int(w/7))))
			}
			x += w
		}
		// Steps overlap (a result is stored while the next step runs), so
		// the bars can add up to more than the build took: mark its end.
		if sum := stepsTotal(c.Steps); sum > c.Total+c.Total/50 {
			end := left + c.Total.Seconds()*scale
			fmt.Fprintf(&body, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#000000" stroke-width="2"/>`+"\n", end, y-4, end, y+barH+4)
			y += barH + lineH
			fmt.Fprintf(&body, `<text x="%.0f" y="%.0f" font-size="12" font-style="italic">the build ended at the black line, %.1f s: its steps overlap (each result is stored while the next step runs), so the bars add up to %.1f s</text>`+"\n",
				left, y, c.Total.Seconds(), sum.Seconds())
			y += lineH
		} else {
			y += barH + lineH
		}
		for _, s := range c.Steps {
			how := "built"
			if s.Cached {
				how = "cached"
			}
			fmt.Fprintf(&body, `<rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/><text x="%.0f" y="%.0f" font-size="12">%s: %.2f s, %s</text>`+"\n",
				left, y-9, colorOf(s), left+16, y, html.EscapeString(stepName(s)), s.Duration.Seconds(), how)
			y += lineH
		}
		y += 20
	}
	// A time axis: ticks every 10 s (every 60 s past 3 minutes).
	tick := 10.0
	if longest.Seconds() > 180 {
		tick = 60
	}
	var axis strings.Builder
	for t := 0.0; t <= longest.Seconds(); t += tick {
		x := left + t*scale
		fmt.Fprintf(&axis, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#999"/><text x="%.1f" y="%.0f" font-size="10" text-anchor="middle">%.0f s</text>`+"\n",
			x, y, x, y+5, x, y+17, t)
	}
	y += 30
	return fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif">`+"\n"+
		`<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n%s%s</svg>\n", width, y, body.String(), axis.String())
}

func stepsTotal(steps []build.StepReport) time.Duration {
	var t time.Duration
	for _, s := range steps {
		t += s.Duration
	}
	return t
}

func stepName(s build.StepReport) string {
	if s.Name != "" {
		return s.Name
	}
	return s.Step
}

func colorOf(s build.StepReport) string {
	if s.Cached {
		return "#cccccc"
	}
	return stepColors[s.Step]
}

func clip(s string, n int) string {
	if len(s) <= n || n < 2 {
		return s
	}
	return s[:n-1] + "…"
}
