package testinfra

import (
	"regexp"
	"strings"
	"testing"
)

func TestKeyspaceNameIsValidAndUnique(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)
	long := strings.Repeat("VeryLong/Sub Test-Name ", 10)
	t.Run(long, func(t *testing.T) {
		a, b := KeyspaceName(t), KeyspaceName(t)
		for _, n := range []string{a, b} {
			if !valid.MatchString(n) {
				t.Errorf("keyspace name %q is not a valid CQL identifier of at most 48 characters", n)
			}
		}
		if a == b {
			t.Errorf("two calls gave the same keyspace name %q", a)
		}
	})
}

func TestTopicNameIsValidAndUnique(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	a, b := TopicName(t, "order-events"), TopicName(t, "order-events")
	for _, n := range []string{a, b} {
		if !valid.MatchString(n) || !strings.HasPrefix(n, "order-events-") {
			t.Errorf("topic name %q: want a valid Kafka name starting with order-events-", n)
		}
	}
	if a == b {
		t.Errorf("two calls gave the same topic name %q", a)
	}
}

func TestListFromEnv(t *testing.T) {
	t.Setenv(EnvCQLHosts, " 10.0.0.1:9042 , ,10.0.0.2:9042")
	if got := strings.Join(CQLHosts(), "|"); got != "10.0.0.1:9042|10.0.0.2:9042" {
		t.Errorf("CQLHosts() = %q", got)
	}
	t.Setenv(EnvKafkaBrokers, "")
	if got := strings.Join(KafkaBrokers(), "|"); got != DefaultKafkaBrokers {
		t.Errorf("KafkaBrokers() = %q, want the default %q", got, DefaultKafkaBrokers)
	}
}
