package tracker

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// maxHTTPHeader bounds the status line and headers of a response, on top
// of the body limit.
const maxHTTPHeader = 64 << 10

func (c *Client) announceHTTP(ctx context.Context, t trackerURL, req Request) (Response, error) {
	q := []byte(t.rawQuery)
	if len(q) > 0 {
		q = append(q, '&')
	}
	q = AppendAnnounceQuery(q, req)
	ex, err := c.httpGet(ctx, t, t.path, q)
	if err != nil {
		return Response{Sent: ex.sent, Raw: ex.raw, Records: ex.log.records(ex.sent, ex.raw)}, err
	}
	r, err := ParseHTTPAnnounce(ex.body, c.cfg.MaxPeers)
	r.Sent, r.Raw, r.Records = ex.sent, ex.raw, ex.log.records(ex.sent, ex.raw)
	if err != nil {
		return r, c.httpError(t, ex, err)
	}
	if ex.status != http.StatusOK {
		return r, fmt.Errorf("tracker %s: status %d: %w", t.raw, ex.status, ErrHTTPStatus)
	}
	return r, nil
}

func (c *Client) scrapeHTTP(ctx context.Context, t trackerURL, batch [][20]byte, out map[[20]byte]ScrapeStats) error {
	q := []byte(t.rawQuery)
	if len(q) > 0 {
		q = append(q, '&')
	}
	q = AppendScrapeQuery(q, batch)
	ex, err := c.httpGet(ctx, t, t.path, q)
	if err != nil {
		return err
	}
	files, err := ParseHTTPScrape(ex.body)
	if err != nil {
		return c.httpError(t, ex, err)
	}
	if ex.status != http.StatusOK {
		return fmt.Errorf("tracker %s: scrape status %d: %w", t.raw, ex.status, ErrHTTPStatus)
	}
	for _, h := range batch {
		if s, ok := files[h]; ok {
			out[h] = s
		}
	}
	return nil
}

// httpError names the tracker in a parse error. A body that does not parse
// under a status other than 200 is reported as the status.
func (c *Client) httpError(t trackerURL, ex exchange, err error) error {
	var fe *FailureError
	if errors.As(err, &fe) {
		fe.Tracker = t.raw
		return fe
	}
	if ex.status != http.StatusOK {
		return fmt.Errorf("tracker %s: status %d: %w", t.raw, ex.status, ErrHTTPStatus)
	}
	return fmt.Errorf("tracker %s: %w", t.raw, err)
}

// exchange is one HTTP request and its response.
type exchange struct {
	sent   []byte // request line and headers
	raw    []byte // every byte read from the connection
	status int
	body   []byte
	log    wireLog // when the request went and each read came
}

// httpGet sends one GET over a fresh guarded connection (closed after the
// response, so that the recorded bytes are this exchange and nothing else)
// and reads the response within the size limits and the timeout.
func (c *Client) httpGet(ctx context.Context, t trackerURL, path string, query []byte) (exchange, error) {
	var ex exchange
	ex.sent = fmt.Appendf(nil, "GET %s?%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
		path, query, t.host, c.cfg.UserAgent)

	local, ok := c.cfg.localFor(t.addr.Addr())
	if !ok {
		return ex, fmt.Errorf("tracker %s: %w", t.raw, ErrNoLocalAddr)
	}
	d := &net.Dialer{}
	if len(c.cfg.LocalAddrs) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HTTPTimeout)
	defer cancel()
	conn, err := c.guard.Dialer(d).DialContext(ctx, "tcp", t.addr.String())
	if err != nil {
		return ex, fmt.Errorf("tracker %s: %w", t.raw, err)
	}
	defer conn.Close()
	c.cfg.dialled(conn.LocalAddr())
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return ex, fmt.Errorf("tracker %s: %w", t.raw, err)
	}
	// Cancellation (or the timeout) unblocks any read or write at once.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var inner net.Conn = conn
	if t.scheme == "https" {
		cfg := &tls.Config{}
		if c.cfg.TLS != nil {
			cfg = c.cfg.TLS.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = t.addr.Addr().String()
		}
		inner = tls.Client(conn, cfg)
	}
	rec := &recordingReader{r: inner, left: c.cfg.MaxHTTPResponse + maxHTTPHeader, now: c.now, log: &ex.log}
	wrap := func(err error) error {
		var ne net.Error
		switch {
		case ctx.Err() != nil:
			err = context.Cause(ctx)
		case errors.As(err, &ne) && ne.Timeout():
			// The connection's deadline is the context's: it may fire
			// just before the context notices.
			err = context.DeadlineExceeded
		}
		if rec.over {
			err = ErrTooLarge
		}
		return fmt.Errorf("tracker %s: %w", t.raw, err)
	}
	ex.log.add(true, c.now(), 0, len(ex.sent))
	if _, err := inner.Write(ex.sent); err != nil {
		ex.raw = rec.buf
		return ex, wrap(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(rec), nil)
	if err != nil {
		ex.raw = rec.buf
		return ex, wrap(err)
	}
	defer resp.Body.Close()
	ex.status = resp.StatusCode
	ex.body, err = io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxHTTPResponse+1))
	ex.raw = rec.buf
	if err != nil {
		return ex, wrap(err)
	}
	if int64(len(ex.body)) > c.cfg.MaxHTTPResponse {
		return ex, fmt.Errorf("tracker %s: body over %d bytes: %w", t.raw, c.cfg.MaxHTTPResponse, ErrTooLarge)
	}
	return ex, nil
}

// recordingReader keeps a copy of everything read through it, with the
// time of each read, and refuses to read more than left bytes in all.
type recordingReader struct {
	r    io.Reader
	left int64
	over bool
	buf  []byte
	now  func() time.Time
	log  *wireLog
}

func (r *recordingReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		r.over = true
		return 0, ErrTooLarge
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.r.Read(p)
	r.left -= int64(n)
	if r.log != nil && n > 0 {
		r.log.add(false, r.now(), len(r.buf), len(r.buf)+n)
	}
	r.buf = append(r.buf, p[:n]...)
	return n, err
}
