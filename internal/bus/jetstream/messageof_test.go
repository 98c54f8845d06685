package jetstream

import (
	"context"
	"testing"
)

// MessageOf names each observation's message and its bytes (what the
// batch keeps until it is acknowledged), and 0 bytes once AckSome let the
// message go: ingest's gate counts them towards its bound.
func TestMessageOfGivesEachObservationsMessage(t *testing.T) {
	_, bt := fetchThree(t)
	b := bt.(*batch)
	for i := range 3 {
		m, n := b.MessageOf(i)
		if m != i || n != len(b.msgs[i].Data()) || n < 100 {
			t.Fatalf("MessageOf(%d) = %d, %d; want message %d of %d bytes", i, m, n, i, len(b.msgs[i].Data()))
		}
	}
	if err := b.AckSome(context.Background(), []int{0}); err != nil {
		t.Fatal(err)
	}
	if m, n := b.MessageOf(0); m != 0 || n != 0 {
		t.Fatalf("after its ack: MessageOf(0) = %d, %d; want 0, 0", m, n)
	}
	b.Nak()
}
