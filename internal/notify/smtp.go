package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// TLSPolicy says when an SMTP sender turns the session to TLS.
type TLSPolicy int

const (
	// TLSAuto (the zero value) uses STARTTLS when the server offers it,
	// and refuses to send when it does not, unless the configured host
	// is loopback (localhost, 127.0.0.0/8, ::1).
	TLSAuto TLSPolicy = iota
	// TLSRequired refuses to send without STARTTLS, loopback included.
	TLSRequired
	// TLSOff never uses STARTTLS: the message, and any credentials,
	// travel in clear. For a relay on the same host or a network the
	// operator trusts; it must be asked for by name.
	TLSOff
)

// String is the policy's name in the --alert-smtp URL.
func (p TLSPolicy) String() string {
	switch p {
	case TLSAuto:
		return "auto"
	case TLSRequired:
		return "required"
	case TLSOff:
		return "off"
	}
	return fmt.Sprintf("TLSPolicy(%d)", int(p))
}

// DefaultSMTPTimeout bounds one SMTP delivery when Timeout is zero:
// servers may be slow to greet on purpose.
const DefaultSMTPTimeout = 30 * time.Second

// maxSubject is how many characters of a subject are kept.
const maxSubject = 200

// SMTP sends a message by e-mail through one server, as one transaction
// to every address of To. Addresses are ASCII (no SMTPUTF8).
type SMTP struct {
	Addr string   // the server's host:port
	From string   // the sender, "alerts@example.org" or "Vigil <alerts@example.org>"
	To   []string // the recipients; one refused recipient fails the whole send
	// Auth, when set, authenticates after STARTTLS (net/smtp's
	// PlainAuth refuses to send a password in clear but to localhost).
	Auth smtp.Auth
	// TLS is when to use STARTTLS; the zero value is TLSAuto.
	TLS TLSPolicy
	// TLSConfig verifies the server (nil: the system's roots, the
	// host of Addr as the name to check).
	TLSConfig *tls.Config
	// Hello is the name given in EHLO (empty: "localhost").
	Hello string
	// Timeout bounds one delivery (0: DefaultSMTPTimeout).
	Timeout time.Duration

	// dial replaces the network in tests, to stand for a host that is
	// not loopback.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// String names the server and the sender; never the credentials.
func (s SMTP) String() string {
	return fmt.Sprintf("smtp %s from %s (starttls %s)", s.Addr, s.From, s.TLS)
}

// Validate says why the sender cannot deliver, wrapping ErrConfig.
func (s SMTP) Validate() error {
	if _, _, err := s.hostPort(); err != nil {
		return err
	}
	if _, err := address("sender", s.From); err != nil {
		return fmt.Errorf("%w: smtp %s: %v", ErrConfig, s.Addr, err)
	}
	if len(s.To) == 0 {
		return fmt.Errorf("%w: smtp %s: no recipient", ErrConfig, s.Addr)
	}
	for _, to := range s.To {
		if _, err := address("recipient", to); err != nil {
			return fmt.Errorf("%w: smtp %s: %v", ErrConfig, s.Addr, err)
		}
	}
	if s.TLS < TLSAuto || s.TLS > TLSOff {
		return fmt.Errorf("%w: smtp %s: unknown TLS policy %d", ErrConfig, s.Addr, int(s.TLS))
	}
	return nil
}

func (s SMTP) hostPort() (string, string, error) {
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil || host == "" || port == "" {
		return "", "", fmt.Errorf("%w: smtp server %q: want host:port", ErrConfig, s.Addr)
	}
	return host, port, nil
}

// address parses one address (its error wraps no sentinel); a control character anywhere, or a
// non-ASCII mailbox, is refused.
func address(role, raw string) (*mail.Address, error) {
	for _, r := range raw {
		if unicode.IsControl(r) {
			return nil, fmt.Errorf("%s %q: a control character (CR, LF, ...)", role, raw)
		}
	}
	a, err := mail.ParseAddress(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %v", role, raw, err)
	}
	for i := 0; i < len(a.Address); i++ {
		if c := a.Address[i]; c <= ' ' || c > '~' {
			return nil, fmt.Errorf("%s %q: the mailbox must be printable ASCII", role, raw)
		}
	}
	return a, nil
}

// Send delivers m once. A 5xx reply, a server without STARTTLS where TLS
// is required, and settings that cannot work are permanent (they wrap
// ErrPermanent); a 4xx reply, a failure to connect, a timeout or a
// broken connection are temporary.
func (s SMTP) Send(ctx context.Context, m Message) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if err := checkID(m.ID); err != nil {
		return err
	}
	from, _ := address("sender", s.From)
	var to []*mail.Address
	for _, r := range s.To {
		a, _ := address("recipient", r)
		to = append(to, a)
	}
	msg := compose(m, from, to, time.Now().UTC())

	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultSMTPTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := step(s.Addr, "MAIL", c.Mail(from.Address)); err != nil {
		return err
	}
	for _, a := range to {
		if err := step(s.Addr, "RCPT "+a.Address, c.Rcpt(a.Address)); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return step(s.Addr, "DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return step(s.Addr, "DATA", err)
	}
	if err := w.Close(); err != nil { // the server's answer to the message
		return step(s.Addr, "end of DATA", err)
	}
	_ = c.Quit() // accepted: a failed QUIT changes nothing
	return nil
}

// connect dials, greets, turns to TLS as the policy says and
// authenticates.
func (s SMTP) connect(ctx context.Context) (*smtp.Client, error) {
	host, _, _ := s.hostPort()
	dial := s.dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtp %s: %w", s.Addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	c, err := s.session(ctx, conn, host)
	if err != nil {
		stop()
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (s SMTP) session(ctx context.Context, conn net.Conn, host string) (*smtp.Client, error) {
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return nil, step(s.Addr, "greeting", err)
	}
	hello := s.Hello
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return nil, step(s.Addr, "EHLO", err)
	}
	offered, _ := c.Extension("STARTTLS")
	switch {
	case s.TLS == TLSOff:
	case offered:
		conf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if s.TLSConfig != nil {
			conf = s.TLSConfig.Clone()
			if conf.ServerName == "" {
				conf.ServerName = host
			}
		}
		if err := c.StartTLS(conf); err != nil {
			return nil, step(s.Addr, "STARTTLS", err)
		}
	case s.TLS == TLSRequired || !isLoopback(host):
		return nil, fmt.Errorf("%w: smtp %s does not offer STARTTLS and TLS is required (starttls=off sends in clear, if that is meant)", ErrPermanent, s.Addr)
	}
	if s.Auth != nil {
		if err := c.Auth(s.Auth); err != nil {
			return nil, step(s.Addr, "AUTH", err)
		}
	}
	return c, ctx.Err()
}

// step names what failed; a 5xx reply wraps ErrPermanent, anything else
// (4xx, the network, a timeout) may pass on retry.
func step(addr, what string, err error) error {
	if err == nil {
		return nil
	}
	// A reply's text is the server's: quoted (as textproto.Error quotes
	// it), so that a reply of several lines is one line in the delivery
	// log.
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code < 600 {
		return fmt.Errorf("%w: smtp %s: %s: %d %q", ErrPermanent, addr, what, te.Code, clip(te.Msg))
	}
	return fmt.Errorf("smtp %s: %s: %w", addr, what, err)
}

// compose writes the RFC 5322 message: a header no field of m can add a
// line to, and the text in quoted-printable UTF-8 with CRLF line ends.
func compose(m Message, from *mail.Address, to []*mail.Address, now time.Time) []byte {
	var b bytes.Buffer
	rcpts := make([]string, len(to))
	for i, a := range to {
		rcpts[i] = a.String()
	}
	header := [][2]string{
		{"Date", now.Format(time.RFC1123Z)},
		{"From", from.String()},
		{"To", strings.Join(rcpts, ",\r\n ")},
		{"Subject", subject(m.Subject)},
		{"Message-ID", messageID(m.ID, from.Address)},
		{"X-Vigil-Delivery", m.ID},
		{"Auto-Submitted", "auto-generated"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "quoted-printable"},
	}
	for _, h := range header {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	text := strings.ToValidUTF8(m.Text, "\uFFFD")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(text))
	qp.Close()
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// subject is m.Subject on one line: every control or line-separating
// character becomes a space and at most maxSubject characters are kept.
// Printable ASCII goes as it is; anything else, or text that a reader
// would decode ("=?"), goes as RFC 2047 encoded words (base64 UTF-8),
// folded between words, so that what a reader shows is what was given.
func subject(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > maxSubject {
		s = string([]rune(s)[:maxSubject]) + "…"
	}
	plain := !strings.Contains(s, "=?")
	for i := 0; i < len(s) && plain; i++ {
		plain = s[i] >= ' ' && s[i] <= '~'
	}
	if plain {
		return s
	}
	// Each word holds at most 45 bytes of whole characters: 60 in
	// base64, 72 with its frame, under RFC 2047's 75.
	var words []string
	for len(s) > 0 {
		n := 0
		for n < len(s) {
			_, size := utf8.DecodeRuneInString(s[n:])
			if n+size > 45 {
				break
			}
			n += size
		}
		words = append(words, "=?utf-8?b?"+base64.StdEncoding.EncodeToString([]byte(s[:n]))+"?=")
		s = s[n:]
	}
	return strings.Join(words, "\r\n ")
}

// messageID is derived from the delivery id alone (and the sender's
// domain), so that a retried delivery has the Message-ID of the first
// try and a mail reader shows it once. An id that is not a plain token
// is hashed.
func messageID(id, from string) string {
	domain := from[strings.LastIndexByte(from, '@')+1:]
	if domain == "" || strings.ContainsAny(domain, "<>[]\"\\ ") {
		domain = "vigil.invalid"
	}
	local := "vigil." + id
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			sum := sha256.Sum256([]byte(id))
			local = "vigil.h" + hex.EncodeToString(sum[:16])
			break
		}
	}
	if strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		sum := sha256.Sum256([]byte(id))
		local = "vigil.h" + hex.EncodeToString(sum[:16])
	}
	return "<" + local + "@" + domain + ">"
}
