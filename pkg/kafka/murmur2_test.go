package kafka_test

import (
	"fmt"
	"testing"

	kafkago "github.com/segmentio/kafka-go"

	okafka "github.com/ordersys/ordersys/pkg/kafka"
)

// Vectors computed with the Java client itself (kafka-clients 4.3.1, the version `make infra-up`
// runs): Utils.murmur2(key.getBytes(UTF_8)) and BuiltInPartitioner.partitionForKey(key, n). The
// first six keys are also those of Kafka's own UtilsTest.testMurmur2.
var javaVectors = []struct {
	key     string
	murmur2 int32
	p6, p12 int
}{
	{"21", -973932308, 0, 0},
	{"foobar", -790332482, 0, 6},
	{"a-little-bit-long-string", -985981536, 2, 8},
	{"a-little-bit-longer-string", -1486304829, 5, 11},
	{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971, 5, 5},
	{"abc", 479470107, 3, 3},
	{"", 275646681, 3, 9},
	{"kafka", -798503068, 4, 4},
	{"0b9a4f1e-6a55-4c3e-9d0e-3a0b2c1d4e5f", -1324991778, 2, 2},
	{"6f1c3c1e-2b7f-4f0e-8a51-0c0d5c2e9a11", 1557370241, 5, 5},
	{"c0ffee00-0000-4000-8000-000000000001", -679844087, 3, 9},
	{"3fa85f64-5717-4562-b3fc-2c963f66afa6", -746129683, 1, 1},
}

func TestMurmur2MatchesJavaClient(t *testing.T) {
	for _, v := range javaVectors {
		if got := okafka.Murmur2([]byte(v.key)); got != v.murmur2 {
			t.Errorf("Murmur2(%q) = %d, want %d", v.key, got, v.murmur2)
		}
		if got := okafka.PartitionForKey([]byte(v.key), 6); got != v.p6 {
			t.Errorf("PartitionForKey(%q, 6) = %d, want %d", v.key, got, v.p6)
		}
		if got := okafka.PartitionForKey([]byte(v.key), 12); got != v.p12 {
			t.Errorf("PartitionForKey(%q, 12) = %d, want %d", v.key, got, v.p12)
		}
	}
}

// TestBalancerAgreesWithJavaPartitioner checks that the kafka-go balancer the publisher uses
// places keys where the Java client's default partitioner does.
func TestBalancerAgreesWithJavaPartitioner(t *testing.T) {
	b := okafka.NewBalancer()
	for _, n := range []int{1, 3, 6, 12, 64} {
		parts := make([]int, n)
		for i := range parts {
			parts[i] = i
		}
		for _, v := range javaVectors {
			if got, want := b.Balance(kafkago.Message{Key: []byte(v.key)}, parts...), okafka.PartitionForKey([]byte(v.key), n); got != want {
				t.Errorf("n=%d key %q: balancer chose %d, Java partitioner %d", n, v.key, got, want)
			}
		}
		for i := 0; i < 2000; i++ {
			key := []byte(fmt.Sprintf("aggregate-%d-%x", i, i*7919))
			if got, want := b.Balance(kafkago.Message{Key: key}, parts...), okafka.PartitionForKey(key, n); got != want {
				t.Fatalf("n=%d key %q: balancer chose %d, Java partitioner %d", n, key, got, want)
			}
		}
	}
}
