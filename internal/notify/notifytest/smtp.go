// Package notifytest holds the local ends of notify's deliveries for
// tests: an SMTP sink and a webhook receiver, both on 127.0.0.1 only.
// They record what arrives, can be told to fail, and check what a real
// receiver must check (the webhook's signature). It must never be
// imported by a package built into the vigil binary.
package notifytest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// maxMessage bounds a message the sink keeps.
const maxMessage = 1 << 20

// SMTPMessage is one message the sink accepted.
type SMTPMessage struct {
	From string   // the envelope sender (MAIL FROM)
	To   []string // the envelope recipients (RCPT TO)
	Data []byte   // the message as received, dot-unstuffed, line ends as sent
	TLS  bool     // whether the session had turned to TLS before MAIL
	// BareLF is set when a line of the message ended in LF without CR:
	// what SMTP smuggling relies on, and what a sender must never send.
	BareLF bool
}

// Parse reads the message's header and body.
func (m SMTPMessage) Parse() (*mail.Message, error) {
	return mail.ReadMessage(strings.NewReader(string(m.Data)))
}

// Stage is the command an injected failure answers.
type Stage string

// The stages a sink can be told to fail.
const (
	StageMail Stage = "MAIL"
	StageRcpt Stage = "RCPT"
	StageData Stage = "DATA" // the answer after the message's final dot
)

// SMTPSink is a tiny SMTP server on 127.0.0.1: EHLO/HELO, MAIL, RCPT,
// DATA, RSET, NOOP, QUIT and, when made with StartTLS, STARTTLS with a
// certificate of its own for 127.0.0.1 and localhost.
type SMTPSink struct {
	Addr string // host:port to dial

	ln       net.Listener
	tlsConf  *tls.Config // nil: STARTTLS is not offered
	roots    *x509.CertPool
	wg       sync.WaitGroup
	mu       sync.Mutex
	messages []SMTPMessage
	fails    map[Stage]failure
	commands []string
	user     string // with pass, AUTH PLAIN is offered (after STARTTLS, when offered) and required
	pass     string
}

type failure struct {
	code  int
	times int // <0: always
}

// SinkOption configures a sink.
type SinkOption func(*SMTPSink)

// StartTLS makes the sink offer STARTTLS with a fresh self-signed
// certificate; ClientTLS gives a client configuration that trusts it.
func StartTLS() SinkOption {
	return func(s *SMTPSink) {
		cert, roots, err := selfSigned()
		if err != nil {
			panic(err)
		}
		s.tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.roots = roots
	}
}

// Auth makes the sink offer AUTH PLAIN (only once the session is TLS,
// when the sink offers STARTTLS) and require it before MAIL.
func Auth(user, pass string) SinkOption {
	return func(s *SMTPSink) { s.user, s.pass = user, pass }
}

// NewSMTPSink starts a sink on 127.0.0.1; it stops when the test ends.
func NewSMTPSink(t testing.TB, opts ...SinkOption) *SMTPSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtp sink: %v", err)
	}
	s := &SMTPSink{Addr: ln.Addr().String(), ln: ln, fails: map[Stage]failure{}}
	for _, o := range opts {
		o(s)
	}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// ClientTLS is a client configuration that trusts the sink's certificate
// (nil when the sink offers no STARTTLS).
func (s *SMTPSink) ClientTLS() *tls.Config {
	if s.roots == nil {
		return nil
	}
	return &tls.Config{RootCAs: s.roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// Fail makes the sink answer code at stage for the next times
// transactions (times < 0: always; 0: stop failing).
func (s *SMTPSink) Fail(stage Stage, code, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails[stage] = failure{code: code, times: times}
}

// Messages is a copy of what the sink accepted, in order.
func (s *SMTPSink) Messages() []SMTPMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SMTPMessage, len(s.messages))
	copy(out, s.messages)
	return out
}

// Commands is every command line the sink read, in order (what a
// smuggled command would show up in).
func (s *SMTPSink) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// failing reports the code to answer at stage, if one is due.
func (s *SMTPSink) failing(stage Stage) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.fails[stage]
	if !ok || f.times == 0 {
		return 0
	}
	if f.times > 0 {
		f.times--
		s.fails[stage] = f
	}
	return f.code
}

func (s *SMTPSink) serve() {
	defer s.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			s.session(c)
		}()
	}
}

// session is one SMTP conversation.
type session struct {
	s    *SMTPSink
	conn net.Conn
	tp   *textproto.Conn
	tls  bool
	auth bool
	from string
	to   []string
	mail bool
}

func (s *SMTPSink) session(c net.Conn) {
	ss := &session{s: s, conn: c, tp: textproto.NewConn(c)}
	ss.tp.PrintfLine("220 127.0.0.1 vigil test sink")
	for {
		line, err := ss.tp.ReadLine()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.commands = append(s.commands, line)
		s.mu.Unlock()
		if !ss.command(line) {
			return
		}
	}
}

// command answers one line; false ends the session.
func (ss *session) command(line string) bool {
	verb, arg, _ := strings.Cut(line, " ")
	switch strings.ToUpper(verb) {
	case "EHLO":
		lines := []string{"250-127.0.0.1", "250-8BITMIME", "250-SIZE 1048576"}
		if ss.s.tlsConf != nil && !ss.tls {
			lines = append(lines, "250-STARTTLS")
		}
		if ss.authOffered() {
			lines = append(lines, "250-AUTH PLAIN")
		}
		lines = append(lines, "250 HELP")
		for _, l := range lines {
			ss.tp.PrintfLine("%s", l)
		}
	case "HELO":
		ss.tp.PrintfLine("250 127.0.0.1")
	case "STARTTLS":
		if ss.s.tlsConf == nil || ss.tls {
			ss.tp.PrintfLine("502 5.5.1 STARTTLS not offered")
			return true
		}
		ss.tp.PrintfLine("220 2.0.0 go ahead")
		tc := tls.Server(ss.conn, ss.s.tlsConf)
		if err := tc.Handshake(); err != nil {
			return false
		}
		ss.conn, ss.tp, ss.tls = tc, textproto.NewConn(tc), true
		ss.reset()
	case "AUTH":
		ss.authenticate(arg)
	case "MAIL":
		if ss.s.user != "" && !ss.auth {
			ss.tp.PrintfLine("530 5.7.0 authentication required")
			return true
		}
		if code := ss.s.failing(StageMail); code != 0 {
			ss.tp.PrintfLine("%d injected failure", code)
			return true
		}
		ss.reset()
		ss.from, ss.mail = angle(arg), true
		ss.tp.PrintfLine("250 2.1.0 ok")
	case "RCPT":
		if !ss.mail {
			ss.tp.PrintfLine("503 5.5.1 MAIL first")
			return true
		}
		if code := ss.s.failing(StageRcpt); code != 0 {
			ss.tp.PrintfLine("%d injected failure", code)
			return true
		}
		ss.to = append(ss.to, angle(arg))
		ss.tp.PrintfLine("250 2.1.5 ok")
	case "DATA":
		return ss.data()
	case "RSET":
		ss.reset()
		ss.tp.PrintfLine("250 2.0.0 ok")
	case "NOOP":
		ss.tp.PrintfLine("250 2.0.0 ok")
	case "QUIT":
		ss.tp.PrintfLine("221 2.0.0 bye")
		return false
	default:
		ss.tp.PrintfLine("500 5.5.2 unknown command")
	}
	return true
}

func (ss *session) authOffered() bool {
	return ss.s.user != "" && (ss.s.tlsConf == nil || ss.tls)
}

// authenticate answers AUTH PLAIN, the credentials on the line or on the
// next one.
func (ss *session) authenticate(arg string) {
	mech, resp, _ := strings.Cut(arg, " ")
	if !ss.authOffered() || !strings.EqualFold(mech, "PLAIN") {
		ss.tp.PrintfLine("504 5.5.4 mechanism not offered")
		return
	}
	if resp == "" {
		ss.tp.PrintfLine("334 ")
		line, err := ss.tp.ReadLine()
		if err != nil {
			return
		}
		resp = line
	}
	b, err := base64.StdEncoding.DecodeString(resp)
	parts := strings.Split(string(b), "\x00")
	if err != nil || len(parts) != 3 || parts[1] != ss.s.user || parts[2] != ss.s.pass {
		ss.tp.PrintfLine("535 5.7.8 authentication failed")
		return
	}
	ss.auth = true
	ss.tp.PrintfLine("235 2.7.0 authenticated")
}

func (ss *session) reset() { ss.from, ss.to, ss.mail = "", nil, false }

// data reads a message and records it, or answers an injected failure.
func (ss *session) data() bool {
	if !ss.mail || len(ss.to) == 0 {
		ss.tp.PrintfLine("503 5.5.1 RCPT first")
		return true
	}
	ss.tp.PrintfLine("354 end with <CRLF>.<CRLF>")
	body, bareLF, err := readData(ss.tp.R)
	if err != nil {
		if err == errTooBig {
			ss.tp.PrintfLine("552 5.3.4 too big")
		}
		return false
	}
	if code := ss.s.failing(StageData); code != 0 {
		ss.tp.PrintfLine("%d injected failure", code)
		ss.reset()
		return true
	}
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, SMTPMessage{From: ss.from, To: ss.to, Data: body, TLS: ss.tls, BareLF: bareLF})
	ss.s.mu.Unlock()
	ss.reset()
	ss.tp.PrintfLine("250 2.0.0 queued")
	return true
}

var errTooBig = errors.New("message too big")

// readData reads a message up to the line "." alone, strictly: only
// CRLF "." CRLF ends it (as RFC 5321 says, and as a receiver that
// resists smuggling reads it), a leading dot is removed, and the line
// ends are kept as sent.
func readData(r *bufio.Reader) (body []byte, bareLF bool, err error) {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return nil, false, err
		}
		if string(line) == ".\r\n" {
			return body, bareLF, nil
		}
		if len(line) < 2 || line[len(line)-2] != '\r' {
			bareLF = true
		}
		if line[0] == '.' {
			line = line[1:]
		}
		if len(body)+len(line) > maxMessage {
			return nil, false, errTooBig
		}
		body = append(body, line...)
	}
}

// angle takes the path out of "FROM:<a@b> SIZE=..." or "TO:<a@b>".
func angle(arg string) string {
	i, j := strings.IndexByte(arg, '<'), strings.IndexByte(arg, '>')
	if i < 0 || j < i {
		return ""
	}
	return arg[i+1 : j]
}

// selfSigned makes a certificate for 127.0.0.1 and localhost, and a pool
// that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vigil test sink"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
