package app

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestKeyedMutexSerialisesPerKey(t *testing.T) {
	var k keyedMutex
	ctx := context.Background()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		inside  = map[string]int{}
		maxSeen int
	)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []string{"a", "b"}[i%2]
			unlock, err := k.lock(ctx, key)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside[key]++
			maxSeen = max(maxSeen, inside[key])
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside[key]--
			mu.Unlock()
			unlock()
		}()
	}
	wg.Wait()
	if maxSeen != 1 {
		t.Fatalf("%d holders of one key at once", maxSeen)
	}
	if n := k.size(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}

func TestKeyedMutexWaitEndsWithContext(t *testing.T) {
	var k keyedMutex
	unlock, err := k.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := k.lock(ctx, "a"); err == nil {
		t.Fatal("second holder of a held key")
	}
	other, err := k.lock(context.Background(), "b")
	if err != nil {
		t.Fatalf("other key: %v", err)
	}
	other()
	unlock()
	if n := k.size(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}
