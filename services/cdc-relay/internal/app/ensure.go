package app

import (
	"context"
	"errors"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	okafka "github.com/ordersys/ordersys/pkg/kafka"
)

// ensuringPublisher creates, in the background, a topic the broker says does not exist, so a
// row naming a topic the relay was not configured with does not wait forever.
type ensuringPublisher struct {
	*okafka.Publisher
	ensure func(ctx context.Context, topic string)

	mu      sync.Mutex
	started map[string]time.Time
}

func (p *ensuringPublisher) Publish(ctx context.Context, msgs []kafkago.Message) []error {
	errs := p.Publisher.Publish(ctx, msgs)
	for i, err := range errs {
		if err != nil && errors.Is(err, kafkago.UnknownTopicOrPartition) {
			p.kick(ctx, msgs[i].Topic)
		}
	}
	return errs
}

func (p *ensuringPublisher) kick(ctx context.Context, topic string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started == nil {
		p.started = map[string]time.Time{}
	}
	if t, ok := p.started[topic]; ok && time.Since(t) < 30*time.Second {
		return
	}
	p.started[topic] = time.Now()
	go p.ensure(context.WithoutCancel(ctx), topic)
}
