package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestProgressViewDrawsABar: on a terminal the progress of a rebuild or re-publication is one
// bar with the server's detail beside it; elsewhere one line per report.
func TestProgressViewDrawsABar(t *testing.T) {
	var buf bytes.Buffer
	v := &progressView{w: &buf, bar: newBar(&buf, "rebuild")}
	v.update(0.5, "orders v2: 12 aggregates 40 events 80 events/s ETA 3s")
	v.update(0.75, "orders v2: 18 aggregates 60 events 80 events/s ETA 1s")
	v.finish("orders v2: caught up, readers switched to it")
	out := buf.String()
	for _, want := range []string{"75%", "750/1000", "ETA 1s", "readers switched"} {
		if !strings.Contains(out, want) {
			t.Errorf("bar output lacks %q:\n%q", want, out)
		}
	}

	buf.Reset()
	lines := newProgressView(options{stdout: &buf}, "rebuild") // not a terminal
	lines.update(0.5, "half")
	lines.finish("done")
	if buf.String() != "half\ndone\n" {
		t.Errorf("line output %q, want one line per report", buf.String())
	}
}
