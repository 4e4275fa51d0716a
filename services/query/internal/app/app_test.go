package app

import (
	"errors"
	"testing"

	"github.com/ordersys/ordersys/pkg/es"
)

func TestPageSize(t *testing.T) {
	s := NewService(nil, nil, Options{})
	cases := []struct {
		in      int32
		want    int
		invalid bool
	}{
		{0, DefaultPageSize, false},
		{1, 1, false},
		{MaxPageSize, MaxPageSize, false},
		{MaxPageSize + 1, MaxPageSize, false},
		{1 << 30, MaxPageSize, false},
		{-1, 0, true},
	}
	for _, tc := range cases {
		got, err := checkPageSize(int(tc.in), s.opts.DefaultPageSize, s.opts.MaxPageSize)
		if tc.invalid != errors.Is(err, es.ErrInvalidArgument) || got != tc.want {
			t.Errorf("pageSize(%d) = %d, %v; want %d (invalid %v)", tc.in, got, err, tc.want, tc.invalid)
		}
	}
}

func TestCheckID(t *testing.T) {
	cases := []struct {
		in, want string
		invalid  bool
	}{
		{" 0B3F6A43-5E0B-4C43-9F3E-2A1E8C0D7B11 ", "0b3f6a43-5e0b-4c43-9f3e-2a1e8c0d7b11", false},
		{"", "", true},
		{"0b3f6a43", "", true},
	}
	for _, tc := range cases {
		got, err := checkID("order_id", tc.in)
		var ve *es.ValidationError
		if tc.invalid != errors.As(err, &ve) || got != tc.want {
			t.Errorf("checkID(%q) = %q, %v", tc.in, got, err)
		}
		if tc.invalid && ve.Violations[0].Field != "order_id" {
			t.Errorf("checkID(%q) names field %q", tc.in, ve.Violations[0].Field)
		}
	}
}

func TestOptionDefaults(t *testing.T) {
	s := NewService(nil, nil, Options{DefaultPageSize: 500, MaxPageSize: 50, MinPoll: 200e6})
	if s.opts.DefaultPageSize != 50 || s.opts.MaxPoll != 200e6 || s.opts.MaxWait != DefaultMaxWait || s.opts.Snapshots == nil {
		t.Errorf("options %+v", s.opts)
	}
}
