// Package web holds the dashboard's page and assets (static/), embedded
// in the binary: plain HTML, CSS and JavaScript modules with no build
// step, and a vendored copy of uPlot (static/vendor/uplot; see
// vendor.sh). server serves them at / when the dashboard is on.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var files embed.FS

// FS returns the assets, rooted at static/ (index.html at its top).
func FS() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // static/ is embedded at build time
	}
	return sub
}
