package ndt7

import (
	"math/bits"
	"testing"
)

func TestNextMessageSize(t *testing.T) {
	tests := []struct {
		size  int
		total int64
		want  int
	}{
		{MinMessageSize, 0, MinMessageSize},
		{MinMessageSize, 16 * MinMessageSize, MinMessageSize}, // exactly total/16: not below it
		{MinMessageSize, 16*MinMessageSize + 16, 2 * MinMessageSize},
		{1 << 20, 1 << 30, 1 << 21},
		{MaxMessageSize, 1 << 40, MaxMessageSize}, // never above the maximum
		{MaxMessageSize / 2, 1 << 40, MaxMessageSize},
	}
	for _, tc := range tests {
		if got := nextMessageSize(tc.size, tc.total); got != tc.want {
			t.Errorf("nextMessageSize(%d, %d) = %d, want %d", tc.size, tc.total, got, tc.want)
		}
	}
}

// TestMessageSizeSequence sends 8 GiB by the scaling rule: sizes stay powers
// of two between the spec's bounds, grow only while below total/16, and
// reach the maximum.
func TestMessageSizeSequence(t *testing.T) {
	size, total := MinMessageSize, int64(0)
	for total < 8<<30 {
		total += int64(size)
		next := nextMessageSize(size, total)
		if bits.OnesCount(uint(next)) != 1 || next < MinMessageSize || next > MaxMessageSize {
			t.Fatalf("size %d after %d bytes: not a power of two in [2^13, 2^24]", next, total)
		}
		if next != size && int64(size) >= total/16 {
			t.Fatalf("grew from %d at total %d, although it was not below total/16", size, total)
		}
		size = next
	}
	if size != MaxMessageSize {
		t.Errorf("after 8 GiB the size is %d, want %d", size, MaxMessageSize)
	}
}
