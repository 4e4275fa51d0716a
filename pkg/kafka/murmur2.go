package kafka

import kafkago "github.com/segmentio/kafka-go"

// Murmur2 is the 32-bit murmur2 hash the Java client (org.apache.kafka.common.utils.Utils.murmur2)
// and librdkafka's "murmur2" partitioner apply to record keys, returned as the Java int.
func Murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[length&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// PartitionForKey returns the partition the Java client's default partitioner chooses for a
// non-null key among n partitions: toPositive(murmur2(key)) % n
// (org.apache.kafka.clients.producer.internals.BuiltInPartitioner.partitionForKey).
func PartitionForKey(key []byte, n int) int {
	if n <= 0 {
		return 0
	}
	return int(uint32(Murmur2(key))&0x7fffffff) % n
}

// NewBalancer returns the kafka-go balancer that places keyed records where the Java client's
// default partitioner does (see PartitionForKey). Records without a key are spread at random.
func NewBalancer() kafkago.Balancer { return &kafkago.Murmur2Balancer{} }
