package image

import "testing"

// The default session is the desktop's own: a NAME-wayland session beside
// an X11 NAME (Xfce 4.20, Cinnamon) is its experimental Wayland one, while a
// Wayland-first desktop (Plasma, Sway) keeps its Wayland session.
func TestAutologinDefaultSession(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string // session name, or the session asked for
		ask   string
	}{
		{name: "xfce", want: "xfce", files: map[string]string{
			"usr/share/wayland-sessions/xfce-wayland.desktop": "[Desktop Entry]\nExec=startxfce4 --wayland\n",
			"usr/share/xsessions/lightdm-xsession.desktop":    "[Desktop Entry]\nExec=default\n",
			"usr/share/xsessions/xfce.desktop":                "[Desktop Entry]\nExec=startxfce4\n"}},
		{name: "xfce-wayland asked for", ask: "xfce-wayland", want: "xfce-wayland", files: map[string]string{
			"usr/share/wayland-sessions/xfce-wayland.desktop": "[Desktop Entry]\nExec=startxfce4 --wayland\n",
			"usr/share/xsessions/xfce.desktop":                "[Desktop Entry]\nExec=startxfce4\n"}},
		{name: "cinnamon", want: "cinnamon", files: map[string]string{
			"usr/share/wayland-sessions/cinnamon-wayland.desktop": "[Desktop Entry]\nExec=cinnamon-session-cinnamon-wayland\n",
			"usr/share/xsessions/cinnamon.desktop":                "[Desktop Entry]\nExec=cinnamon-session-cinnamon\n",
			"usr/share/xsessions/cinnamon2d.desktop":              "[Desktop Entry]\nExec=cinnamon-session-cinnamon2d\n"}},
		{name: "mate", want: "mate", files: map[string]string{
			"usr/share/xsessions/lightdm-xsession.desktop": "[Desktop Entry]\nExec=default\n",
			"usr/share/xsessions/mate.desktop":             "[Desktop Entry]\nExec=mate-session\n"}},
		{name: "lightdm-xsession alone", want: "lightdm-xsession", files: map[string]string{
			"usr/share/xsessions/lightdm-xsession.desktop": "[Desktop Entry]\nExec=default\n"}},
		{name: "plasma", want: "plasma", files: map[string]string{
			"usr/share/wayland-sessions/plasma.desktop": "[Desktop Entry]\nExec=startplasma-wayland\n",
			"usr/share/xsessions/plasmax11.desktop":     "[Desktop Entry]\nExec=startplasma-x11\n"}},
		{name: "wayland only", want: "labwc-wayland", files: map[string]string{
			"usr/share/wayland-sessions/labwc-wayland.desktop": "[Desktop Entry]\nExec=labwc\n"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := findSession(deployment(t, c.files, nil), c.ask)
			if err != nil {
				t.Fatal(err)
			}
			if s.name != c.want {
				t.Errorf("session %q, want %q", s.name, c.want)
			}
		})
	}
}
