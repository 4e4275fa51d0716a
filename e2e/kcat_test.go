package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// kcatRecord is one Kafka record as kcat printed it.
type kcatRecord struct {
	Partition int
	Offset    int64
	Key       string
	Headers   map[string]string
}

// kcatBin is the kcat to run: E2E_KCAT, else kcat on PATH.
func kcatBin() (string, error) {
	if b := os.Getenv("E2E_KCAT"); b != "" {
		return b, nil
	}
	b, err := exec.LookPath("kcat")
	if err != nil {
		return "", fmt.Errorf("kcat is not installed (make e2e-tools installs it: apt-get install kcat): %w", err)
	}
	return b, nil
}

// kcatRead reads topic from the beginning to its current end as an outside consumer (kcat, no
// consumer group) and returns the records whose key is in keys, in the order of each partition.
func (s *system) kcatRead(topic string, keys map[string]bool) ([]kcatRecord, error) {
	bin, err := kcatBin()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Fields separated by tabs; kcat prints headers as k=v pairs separated by commas.
	cmd := exec.CommandContext(ctx, bin, "-C", "-q", "-e", "-o", "beginning",
		"-b", strings.Join(s.brokers, ","), "-t", topic,
		"-f", `%p\t%o\t%k\t%h\n`)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	var recs []kcatRecord
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 4)
		if len(f) < 3 || !keys[f[2]] {
			continue
		}
		p, err1 := strconv.Atoi(f[0])
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("kcat line %q: bad partition or offset", sc.Text())
		}
		r := kcatRecord{Partition: p, Offset: o, Key: f[2], Headers: map[string]string{}}
		if len(f) == 4 {
			for _, kv := range strings.Split(f[3], ",") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					r.Headers[k] = v
				}
			}
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// kcatDump reads topic from the beginning to its current end with kcat, as an outside consumer
// without key access would, and returns every record as kcat prints it: key, headers and the
// value's bytes.
func (s *system) kcatDump(topic string) ([]byte, error) {
	bin, err := kcatBin()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-C", "-q", "-e", "-o", "beginning",
		"-b", strings.Join(s.brokers, ","), "-t", topic, "-f", `%k\t%h\t%s\n`)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	return out, nil
}
