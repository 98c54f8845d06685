package notify_test

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/notify"
	"github.com/vigil-oss/vigil/internal/notify/notifytest"
)

// One test makes a server on loopback stand for a distant host
// (notify.WithDial, export_test.go).

func mailMessage(id string) notify.Message {
	return notify.Message{
		ID:      id,
		Rule:    "rule-1",
		Agency:  "ocrtis",
		At:      time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC),
		Subject: "Vigil : fichier surveillé vu dans votre ressort",
		Text:    "Une cible correspond à la règle rule-1.\nVoir la vue d'ensemble.\n",
	}
}

// body decodes a received message's text.
func body(t *testing.T, m notifytest.SMTPMessage) (subject string, text string, header map[string][]string) {
	t.Helper()
	msg, err := m.Parse()
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, m.Data)
	}
	if cte := msg.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("subject %q: %v", msg.Header.Get("Subject"), err)
	}
	return subject, string(b), msg.Header
}

func TestSMTPDeliversToSink(t *testing.T) {
	sink := notifytest.NewSMTPSink(t)
	s := notify.SMTP{Addr: sink.Addr, From: "Vigil <alerts@vigil.example>", To: []string{"desk@ocrtis.example", "Duty Officer <duty@ocrtis.example>"}}
	m := mailMessage("d-1")
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := sink.Messages()
	if len(got) != 1 {
		t.Fatalf("sink has %d messages", len(got))
	}
	if got[0].From != "alerts@vigil.example" || strings.Join(got[0].To, " ") != "desk@ocrtis.example duty@ocrtis.example" {
		t.Errorf("envelope from %q to %q", got[0].From, got[0].To)
	}
	if got[0].BareLF {
		t.Errorf("a line ended in a bare LF")
	}
	subj, text, h := body(t, got[0])
	if subj != m.Subject {
		t.Errorf("subject %q, want %q", subj, m.Subject)
	}
	if want := strings.ReplaceAll(m.Text, "\n", "\r\n"); text != want {
		t.Errorf("text %q, want %q", text, want)
	}
	if ct := h["Content-Type"]; len(ct) != 1 || ct[0] != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if id := h["Message-Id"]; len(id) != 1 || id[0] != "<vigil.d-1@vigil.example>" {
		t.Errorf("Message-ID %q", id)
	}
	if d, err := time.Parse(time.RFC1123Z, h["Date"][0]); err != nil || time.Since(d) > time.Minute {
		t.Errorf("Date %q: %v", h["Date"], err)
	}
	for _, name := range []string{"From", "To", "Mime-Version", "X-Vigil-Delivery", "Auto-Submitted"} {
		if len(h[name]) != 1 {
			t.Errorf("header %s: %q", name, h[name])
		}
	}
}

// A retried delivery carries the Message-ID of the first try; another
// delivery another one, and an id unfit for a Message-ID is hashed.
func TestSMTPMessageIDFollowsDelivery(t *testing.T) {
	sink := notifytest.NewSMTPSink(t)
	s := notify.SMTP{Addr: sink.Addr, From: "alerts@vigil.example", To: []string{"desk@ocrtis.example"}}
	for _, id := range []string{"d-7", "d-7", "d-8", "a@b>c", "a@b>d"} {
		if err := s.Send(context.Background(), mailMessage(id)); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for _, m := range sink.Messages() {
		_, _, h := body(t, m)
		ids = append(ids, h["Message-Id"][0])
	}
	if ids[0] != ids[1] || ids[1] == ids[2] || ids[3] == ids[4] || strings.Contains(ids[3], "a@b") {
		t.Fatalf("Message-IDs %q", ids)
	}
}

func TestSMTPStartTLS(t *testing.T) {
	sink := notifytest.NewSMTPSink(t, notifytest.StartTLS())
	for _, p := range []notify.TLSPolicy{notify.TLSAuto, notify.TLSRequired} {
		s := notify.SMTP{Addr: sink.Addr, From: "alerts@vigil.example", To: []string{"desk@ocrtis.example"}, TLS: p, TLSConfig: sink.ClientTLS()}
		if err := s.Send(context.Background(), mailMessage("tls")); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	for i, m := range sink.Messages() {
		if !m.TLS {
			t.Errorf("message %d was sent in clear though STARTTLS was offered", i)
		}
	}
	// A server whose certificate is not trusted gets nothing.
	s := notify.SMTP{Addr: sink.Addr, From: "alerts@vigil.example", To: []string{"desk@ocrtis.example"}}
	if err := s.Send(context.Background(), mailMessage("untrusted")); err == nil {
		t.Fatal("sent to a server with an untrusted certificate")
	}
	if n := len(sink.Messages()); n != 2 {
		t.Fatalf("sink has %d messages, want 2", n)
	}
}

// TLS is required to a distant server: one that does not offer STARTTLS
// (or whose offer was stripped on the way) gets no message, and the
// failure is permanent. Loopback is the exception, unless TLS is
// required by name; starttls=off is the only way to send in clear.
func TestSMTPRefusesPlaintextServerUnlessLoopback(t *testing.T) {
	sink := notifytest.NewSMTPSink(t) // offers no STARTTLS
	distant := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, sink.Addr)
	}
	cases := []struct {
		name string
		s    notify.SMTP
		ok   bool
	}{
		{"distant, auto", notify.WithDial(notify.SMTP{Addr: "mail.example.org:25", TLS: notify.TLSAuto}, distant), false},
		{"distant, required", notify.WithDial(notify.SMTP{Addr: "mail.example.org:25", TLS: notify.TLSRequired}, distant), false},
		{"distant address literal, auto", notify.WithDial(notify.SMTP{Addr: "192.0.2.25:25"}, distant), false},
		{"loopback, required", notify.SMTP{Addr: sink.Addr, TLS: notify.TLSRequired}, false},
		{"loopback, auto", notify.SMTP{Addr: sink.Addr}, true},
		{"distant, off by name", notify.WithDial(notify.SMTP{Addr: "mail.example.org:25", TLS: notify.TLSOff}, distant), true},
	}
	sent := 0
	for _, tc := range cases {
		tc.s.From, tc.s.To = "alerts@vigil.example", []string{"desk@ocrtis.example"}
		err := tc.s.Send(context.Background(), mailMessage("p"))
		if tc.ok {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			sent++
		} else if !errors.Is(err, notify.ErrPermanent) || !strings.Contains(err.Error(), "STARTTLS") {
			t.Errorf("%s: %v, want a permanent error naming STARTTLS", tc.name, err)
		}
	}
	if n := len(sink.Messages()); n != sent {
		t.Fatalf("sink has %d messages, want %d", n, sent)
	}
	for _, c := range sink.Commands() {
		if strings.HasPrefix(c, "MAIL") {
			sent--
		}
	}
	if sent != 0 {
		t.Fatalf("MAIL was sent %d times more than the accepted cases", -sent)
	}
}

// A hostile subject (from a file name seen on the network, say) cannot
// add a header, a recipient or a second message.
func TestSMTPHostileSubjectAndBody(t *testing.T) {
	sink := notifytest.NewSMTPSink(t)
	s := notify.SMTP{Addr: sink.Addr, From: "alerts@vigil.example", To: []string{"desk@ocrtis.example"}}
	subjects := []string{
		"hit\r\nBcc: evil@attacker.example",
		"hit\nBcc: evil@attacker.example\n\nforged body",
		"hit\rContent-Type: text/html",
		"hit\u0085Bcc: evil@attacker.example\u2028X: y",
		"hit\x00\x1b[31m" + strings.Repeat("é", 500),
		"=?utf-8?q?=0D=0ABcc:_evil@attacker.example?=",
		"\xff\xfe invalid UTF-8",
	}
	bodies := []string{
		"line\r\n.\r\nMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nsmuggled\r\n.\r\n",
		"line\n.\nMAIL FROM:<evil@attacker.example>\n",
		"bare\rCR and bare\nLF and .\n.. dots\r\n.",
		"\x00\x1b binary \xff",
	}
	n := 0
	for _, subj := range subjects {
		for _, text := range bodies {
			m := mailMessage("h")
			m.Subject, m.Text = subj, text
			if err := s.Send(context.Background(), m); err != nil {
				t.Fatalf("subject %q: %v", subj, err)
			}
			n++
		}
	}
	got := sink.Messages()
	if len(got) != n {
		t.Fatalf("sink has %d messages, want %d (one was split or smuggled)", len(got), n)
	}
	for i, m := range got {
		if m.BareLF {
			t.Errorf("message %d: a line ended in a bare LF", i)
		}
		if strings.Join(m.To, ",") != "desk@ocrtis.example" || m.From != "alerts@vigil.example" {
			t.Errorf("message %d: envelope %q -> %q", i, m.From, m.To)
		}
		subj, text, h := body(t, m)
		for _, name := range []string{"Bcc", "X"} {
			if _, ok := h[name]; ok {
				t.Errorf("message %d: a %s header was injected", i, name)
			}
		}
		if ct := h["Content-Type"]; len(ct) != 1 || ct[0] != "text/plain; charset=utf-8" {
			t.Errorf("message %d: Content-Type %q", i, ct)
		}
		if strings.ContainsAny(subj, "\r\n\x00\u0085\u2028") || len([]rune(subj)) > notify.MaxSubject+1 {
			t.Errorf("message %d: subject %q", i, subj)
		}
		want := subjects[i/len(bodies)]
		if !strings.HasPrefix(want, "hit") {
			continue
		}
		if !strings.HasPrefix(subj, "hit") {
			t.Errorf("message %d: subject %q lost its text", i, subj)
		}
		src := bodies[i%len(bodies)]
		if strings.Contains(src, "smuggled") && !strings.Contains(text, "smuggled\r\n.\r\n") {
			t.Errorf("message %d: the body lost its text: %q", i, text)
		}
	}
	for _, c := range sink.Commands() {
		if strings.Contains(c, "attacker") || strings.Contains(c, "victim") {
			t.Errorf("a command reached the server from a message: %q", c)
		}
	}
}

// Addresses with a line break or a control character are refused before
// anything is sent.
func TestSMTPRefusesHostileAddresses(t *testing.T) {
	sink := notifytest.NewSMTPSink(t)
	for _, tc := range []struct{ from, to string }{
		{"alerts@vigil.example\r\nBcc: evil@attacker.example", "desk@ocrtis.example"},
		{"alerts@vigil.example", "desk@ocrtis.example\r\nRCPT TO:<evil@attacker.example>"},
		{"alerts@vigil.example", "desk@ocrtis.example>\nDATA"},
		{"Vigil\n <alerts@vigil.example>", "desk@ocrtis.example"},
		{"Vigil <alerts@vigil.example> (x\r\n y)", "desk@ocrtis.example"}, // net/mail takes this comment
		{"alerts@vigil.example", "Desk <desk@ocrtis.example> (\r\nBcc: evil@attacker.example)"},
		{"alerts@vigil.example", "dés@ocrtis.example"},
		{"alerts@vigil.example", "not an address"},
		{"", "desk@ocrtis.example"},
	} {
		s := notify.SMTP{Addr: sink.Addr, From: tc.from, To: []string{tc.to}}
		if err := s.Send(context.Background(), mailMessage("a")); !errors.Is(err, notify.ErrConfig) {
			t.Errorf("from %q to %q: %v, want notify.ErrConfig", tc.from, tc.to, err)
		}
	}
	if err := (notify.SMTP{Addr: sink.Addr, From: "alerts@vigil.example"}).Send(context.Background(), mailMessage("a")); !errors.Is(err, notify.ErrConfig) {
		t.Errorf("no recipient: %v", err)
	}
	if m := mailMessage("a\r\nBcc: x"); !errors.Is((notify.SMTP{Addr: sink.Addr, From: "a@b.example", To: []string{"c@d.example"}}).Send(context.Background(), m), notify.ErrPermanent) {
		t.Errorf("a hostile delivery id was accepted")
	}
	if c := sink.Commands(); len(c) != 0 {
		t.Fatalf("the server was spoken to: %q", c)
	}
}

func TestSMTPClassifiesReplies(t *testing.T) {
	for _, tc := range []struct {
		stage notifytest.Stage
		code  int
		perm  bool
	}{
		{notifytest.StageMail, 421, false},
		{notifytest.StageMail, 451, false},
		{notifytest.StageMail, 550, true},
		{notifytest.StageMail, 530, true},
		{notifytest.StageRcpt, 501, true},
		{notifytest.StageRcpt, 450, false},
		{notifytest.StageRcpt, 550, true},
		{notifytest.StageRcpt, 553, true},
		{notifytest.StageData, 452, false},
		{notifytest.StageData, 554, true},
	} {
		sink := notifytest.NewSMTPSink(t)
		sink.Fail(tc.stage, tc.code, 1)
		s := notify.SMTP{Addr: sink.Addr, From: "alerts@vigil.example", To: []string{"desk@ocrtis.example"}}
		err := s.Send(context.Background(), mailMessage("c"))
		if err == nil || errors.Is(err, notify.ErrPermanent) != tc.perm {
			t.Errorf("%s %d: %v, want permanent=%v", tc.stage, tc.code, err, tc.perm)
		}
		if len(sink.Messages()) != 0 {
			t.Errorf("%s %d: the sink kept the message", tc.stage, tc.code)
		}
		if !tc.perm { // the retry goes through
			if err := s.Send(context.Background(), mailMessage("c")); err != nil || len(sink.Messages()) != 1 {
				t.Errorf("%s %d: retry: %v, %d messages", tc.stage, tc.code, err, len(sink.Messages()))
			}
		}
	}
}

func TestSMTPConnectionFailuresAreTemporary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := notify.SMTP{Addr: addr, From: "alerts@vigil.example", To: []string{"desk@ocrtis.example"}}
	if err := s.Send(context.Background(), mailMessage("t")); err == nil || errors.Is(err, notify.ErrPermanent) {
		t.Fatalf("connection refused: %v, want a temporary error", err)
	}

	// A server that accepts and says nothing is cut at Timeout.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s.Addr, s.Timeout = silent.Addr().String(), 200*time.Millisecond
	start := time.Now()
	if err := s.Send(context.Background(), mailMessage("t")); err == nil || errors.Is(err, notify.ErrPermanent) || time.Since(start) > 5*time.Second {
		t.Fatalf("a silent server: %v after %v, want a temporary error after 200ms", err, time.Since(start))
	}
	// And so is one when the caller's context ends.
	ctx, cancel := context.WithCancel(context.Background())
	s.Timeout = time.Minute
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	if err := s.Send(ctx, mailMessage("t")); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("cancelled: %v after %v", err, time.Since(start))
	}
}

func TestSMTPAuthenticatesAfterStartTLS(t *testing.T) {
	sink := notifytest.NewSMTPSink(t, notifytest.StartTLS(), notifytest.Auth("vigil", "correct horse"))
	send := func(auth smtp.Auth) error {
		s := notify.SMTP{Addr: sink.Addr, From: "alerts@vigil.example", To: []string{"desk@ocrtis.example"}, TLSConfig: sink.ClientTLS(), Auth: auth}
		return s.Send(context.Background(), mailMessage("auth"))
	}
	if err := send(smtp.PlainAuth("", "vigil", "correct horse", "127.0.0.1")); err != nil {
		t.Fatalf("with the right password: %v", err)
	}
	if err := send(smtp.PlainAuth("", "vigil", "wrong", "127.0.0.1")); !errors.Is(err, notify.ErrPermanent) {
		t.Fatalf("with a wrong password: %v, want permanent (535)", err)
	}
	if err := send(nil); !errors.Is(err, notify.ErrPermanent) {
		t.Fatalf("without AUTH: %v, want permanent (530)", err)
	}
	if got := sink.Messages(); len(got) != 1 || !got[0].TLS {
		t.Fatalf("sink has %d messages", len(got))
	}
}

// A server's reply of several lines stays one line in the error (the
// delivery log's line), whatever the server puts in it.
func TestSMTPReplyTextIsQuoted(t *testing.T) {
	for _, code := range []int{450, 550} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go hostileServer(ln, code)
		s := notify.SMTP{Addr: ln.Addr().String(), From: "alerts@vigil.example", To: []string{"desk@ocrtis.example"}}
		err = s.Send(context.Background(), mailMessage("q"))
		ln.Close()
		if err == nil || errors.Is(err, notify.ErrPermanent) != (code >= 500) || strings.ContainsAny(err.Error(), "\r\n") || !strings.Contains(err.Error(), "forged") {
			t.Errorf("a reply of three lines, %d: %q", code, err)
		}
	}
}

// hostileServer answers MAIL with a reply of three lines, the second a
// forged log record.
func hostileServer(ln net.Listener, code int) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	tp := textproto.NewConn(c)
	tp.PrintfLine("220 hostile")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		switch {
		case strings.HasPrefix(line, "EHLO"):
			tp.PrintfLine("250 hostile")
		case strings.HasPrefix(line, "MAIL"):
			tp.PrintfLine("%d-first\r\n%d-level=ERROR msg=\"forged log line\"\r\n%d last", code, code, code)
		default:
			tp.PrintfLine("221 bye")
			return
		}
	}
}
