package lab

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/lab/announcer"
)

// Announcer is the story's announce-only client: it announces a watched
// torrent on the DHT and never accepts a connection (nothing listens on
// its TCP port), so all a sensor can learn of it is that it announced.
type Announcer struct {
	c        *announcer.Client
	infohash [20]byte
	every    time.Duration
}

// StartAnnouncer starts the announce-only client at AnnouncerAddr and
// announces the first watched torrent every `every` until ctx ends.
// Lookups start from the lab's bootstrap nodes and from also (a sensor's
// DHT identities, say), and the client announces to every node that
// answered with a token (K 64), as a client that wants to be found would:
// in a lab of a few dozen nodes that reaches the sensor whatever its ids.
// Close stops it.
func (l *Lab) StartAnnouncer(ctx context.Context, also []netip.AddrPort, every time.Duration) (*Announcer, error) {
	var t *Torrent
	for _, x := range l.torrents {
		if x.Watched {
			t = x
			break
		}
	}
	if t == nil {
		return nil, fmt.Errorf("lab announcer: no watched torrent")
	}
	h := t.InfoHash
	if h == "" {
		h = t.InfoHashV2Short
	}
	var ih [20]byte
	if b, err := hex.DecodeString(h); err != nil || len(b) != 20 {
		return nil, fmt.Errorf("lab announcer: info-hash %q of %s", h, t.Name)
	} else {
		copy(ih[:], b)
	}
	cfg := announcer.DefaultConfig()
	// The announcer is an IPv4 client: it joins the lab's IPv4 DHT.
	cfg.Bootstrap = append(l.BootstrapOf(false), also...)
	cfg.K, cfg.MaxQueries = 64, 400
	c, err := announcer.Listen(netip.AddrPortFrom(AnnouncerAddr(), 0), cfg)
	if err != nil {
		return nil, fmt.Errorf("lab announcer: %w", err)
	}
	a := &Announcer{c: c, infohash: ih, every: every}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(l.runCtx, cancel) // Close ends it too
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer stop()
		defer cancel()
		defer c.Close()
		for {
			res, err := c.Announce(ctx, ih, c.Addr().Port())
			if err != nil && ctx.Err() == nil {
				l.logger.Warn("lab announcer", "err", err)
			} else if err == nil {
				l.logger.Info("lab announcer announced", "addr", c.Addr().String(), "infohash", h, "to", res.AnnouncedTo)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
		}
	}()
	return a, nil
}

// Addr is the announcer's address (UDP; nothing listens on TCP there).
func (a *Announcer) Addr() netip.AddrPort { return a.c.Addr() }

// InfoHash is the hex info-hash it announces.
func (a *Announcer) InfoHash() string { return hex.EncodeToString(a.infohash[:]) }
