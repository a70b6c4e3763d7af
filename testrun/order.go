package testrun

import "slices"

// LongFirst are the packages whose tests take longest, by what they wait
// on: the VM lane's TCG boots (image, iso, desktopcheck) and cold builds
// (build). They start first, side by side, so the lane has a guest to boot
// from the first image on and the builds overlap the boots.
var LongFirst = []string{"image", "iso", "desktopcheck", "build"}

// Order lists the module's LongFirst packages first, in that order, then
// the others as given. go test starts packages in the order it is given
// them, as many at a time as -p allows.
func Order(module string, pkgs []string) []string {
	var first, rest []string
	for _, name := range LongFirst {
		for _, p := range pkgs {
			if p == module+"/"+name {
				first = append(first, p)
			}
		}
	}
	for _, p := range pkgs {
		if !slices.Contains(first, p) {
			rest = append(rest, p)
		}
	}
	return append(first, rest...)
}
