package consumer

import (
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/segmentio/kafka-go"
)

func TestDLQTopic(t *testing.T) {
	if got := DLQTopic("order-events"); got != "order-events.projector.dlq" {
		t.Fatal(got)
	}
}

func TestDeadLetterIDIsTheSameForTheSameMessage(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	m := kafka.Message{Topic: "order-events", Partition: 3, Offset: 42, Time: at}
	id := DeadLetterID("orders", m)
	if again := DeadLetterID("orders", m); again != id {
		t.Fatalf("same message: %v then %v", id, again)
	}
	if id.Version() != 1 || id.Variant() != gocql.VariantIETF {
		t.Fatalf("%v: version %d variant %d, want a time UUID", id, id.Version(), id.Variant())
	}
	if !id.Time().Equal(at) {
		t.Fatalf("%v: time %v, want the message's %v", id, id.Time(), at)
	}
	other := m
	other.Offset++
	for name, o := range map[string]gocql.UUID{
		"next offset":      DeadLetterID("orders", other),
		"other projection": DeadLetterID("customers", m),
	} {
		if o == id {
			t.Errorf("%s: same id %v", name, id)
		}
	}
}
