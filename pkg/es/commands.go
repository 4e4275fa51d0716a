package es

import (
	"cmp"
	"slices"
)

// DefaultMaxRememberedCommands is how many command ids an aggregate remembers at most by
// default: past it, recording a new one forgets the oldest.
const DefaultMaxRememberedCommands = 1000

// CommandsToForget returns the ids of recorded commands to drop so that, once one more is
// recorded, at most max remain: rejections first (a rejection is also kept in the
// command_rejections table, where a read still finds it), then the oldest ones by the last
// event they appended (ties by id).
// A max below 1 counts as 1. It returns nil while there is room.
//
// A client that sends endless distinct command ids to one aggregate thus cannot grow the
// record that every command on it reads; a repeat of a forgotten command id is decided again,
// like one whose record has expired.
func CommandsToForget(commands map[string]CommandRecord, max int) []string {
	if max < 1 {
		max = 1
	}
	excess := len(commands) + 1 - max
	if excess <= 0 {
		return nil
	}
	type rec struct {
		id      string
		success int // 0 for a rejection: forgotten first
		last    int64
	}
	all := make([]rec, 0, len(commands))
	for id, r := range commands {
		success := 1
		if r.Rejected {
			success = 0
		}
		all = append(all, rec{id, success, r.LastSequence})
	}
	slices.SortFunc(all, func(a, b rec) int {
		return cmp.Or(cmp.Compare(a.success, b.success), cmp.Compare(a.last, b.last), cmp.Compare(a.id, b.id))
	})
	out := make([]string, 0, excess)
	for _, r := range all[:excess] {
		out = append(out, r.id)
	}
	return out
}
