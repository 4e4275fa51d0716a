package consumer

import "testing"

func TestDLQTopic(t *testing.T) {
	if got := DLQTopic("order-events"); got != "order-events.projector.dlq" {
		t.Fatal(got)
	}
}
