package main

import (
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// barSteps is the resolution of a progress bar (fractions are reported in steps of 0.1 %).
const barSteps = 1000

// progressView shows the progress of a long operation (a rebuild, a re-publication): on a
// terminal, one live bar with the server's counts, rate and ETA beside it; otherwise (a pipe, a
// log, a script) one line per report, which is what scripts and logs can use.
type progressView struct {
	bar *progressbar.ProgressBar // nil: lines
	w   io.Writer
}

// newProgressView returns a bar when o writes tables to a terminal.
func newProgressView(o options, title string) *progressView {
	f, ok := o.stdout.(*os.File)
	if o.output == "json" || !ok || !term.IsTerminal(int(f.Fd())) {
		return &progressView{w: o.stdout}
	}
	return &progressView{w: o.stdout, bar: newBar(f, title)}
}

// newBar is the bar drawn on w.
func newBar(w io.Writer, title string) *progressbar.ProgressBar {
	return progressbar.NewOptions(barSteps,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(title),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(false), // the server's ETA is in the detail
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)
}

// update shows a report: fraction (0..1, negative when unknown) and its detail line.
func (v *progressView) update(fraction float64, detail string) {
	if v.bar == nil {
		fmt.Fprintln(v.w, detail)
		return
	}
	if fraction >= 0 {
		_ = v.bar.Set(int(min(fraction, 1) * barSteps))
	}
	v.bar.Describe(detail)
}

// finish ends the bar (if any) and prints the last line.
func (v *progressView) finish(last string) {
	if v.bar != nil {
		_ = v.bar.Finish()
		fmt.Fprintln(v.w)
	}
	fmt.Fprintln(v.w, last)
}
