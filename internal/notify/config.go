package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"syscall"

	"github.com/vigil-oss/vigil/internal/agency"
)

// ParseSMTPURL reads the server of --alert-smtp:
//
//	smtp://HOST:PORT?from=ADDR[&starttls=required|off]
//
// PORT defaults to 25. Without starttls the policy is TLSAuto (STARTTLS
// when offered, required unless HOST is loopback); "required" asks for
// it on loopback too; "off" sends in clear. The recipients come from the
// alert rules: the result's To is empty. Credentials in the URL are
// refused (they would show in process listings). Errors name the flag.
func ParseSMTPURL(raw string) (SMTP, error) {
	fail := func(format string, a ...any) (SMTP, error) {
		return SMTP{}, fmt.Errorf("--alert-smtp %q: %s", redactURL(raw), fmt.Sprintf(format, a...))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fail("not a URL")
	}
	if u.Scheme != "smtp" {
		return fail("scheme %q: want smtp://HOST:PORT?from=ADDR", u.Scheme)
	}
	if u.User != nil {
		return fail("credentials in the URL are refused (they show in process listings)")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return fail("no host: want smtp://HOST:PORT?from=ADDR")
	}
	if u.Path != "" && u.Path != "/" {
		return fail("unexpected path %q", u.Path)
	}
	port := u.Port()
	if port == "" {
		port = "25"
	}
	s := SMTP{Addr: net.JoinHostPort(u.Hostname(), port)}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fail("query: %v", err)
	}
	for k, v := range q {
		if len(v) != 1 {
			return fail("%s given %d times", k, len(v))
		}
		switch k {
		case "from":
			if _, err := address("sender", v[0]); err != nil {
				return fail("from: %v", err)
			}
			s.From = v[0]
		case "starttls":
			switch v[0] {
			case "required":
				s.TLS = TLSRequired
			case "off":
				s.TLS = TLSOff
			default:
				return fail("starttls=%q: want required or off (absent: when offered, required but on loopback)", v[0])
			}
		default:
			return fail("unknown parameter %q (from, starttls)", k)
		}
	}
	if s.From == "" {
		return fail("no from=ADDR: the sender's address is required")
	}
	return s, nil
}

// WebhookEntry is one receiver of a webhooks file.
type WebhookEntry struct {
	ID      string  // what alert rules name it by
	Webhook Webhook // URL and secret
	// Agency owns it: only that agency's alerts are sent to it.
	Agency string
	// National: the national office's, sent the alerts of any agency
	// whose rules name it. An entry with neither Agency nor National (a
	// file written before they existed) loads, but no alert is sent to
	// it: Bound is false, and vigil serve warns.
	National bool
	Line     int // where the entry starts in its file
}

// Bound reports whether e says whose alerts it receives.
func (e WebhookEntry) Bound() bool { return e.National || e.Agency != "" }

// webhookID is what an entry's id may be.
var webhookID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// fileEntry is the JSON of one entry.
type fileEntry struct {
	ID               string `json:"id"`
	URL              string `json:"url"`
	SecretFile       string `json:"secret_file"`
	AllowPrivateHTTP bool   `json:"allow_private_http"`
	Agency           string `json:"agency"`
	National         bool   `json:"national"`
}

// LoadWebhooks reads a webhooks file: a JSON array of
//
//	{"id": "ocrtis-desk", "agency": "fr-ocrtis", "url": "https://...", "secret_file": "ocrtis.key"}
//
// (optionally "allow_private_http": true). "agency" names the agency whose
// alerts it receives, or "national": true the national office's (every
// agency's alerts whose rules name it); both at once is refused, neither
// loads an entry that receives nothing (WebhookEntry.Bound). A relative secret_file is read
// from the webhooks file's directory; the secret is its content without
// its final line end, at least MinSecret bytes. A secret file that
// another account owns, or that its group or others may read or write,
// is refused. Errors name the file and the entry's line; none shows a
// secret.
func LoadWebhooks(path string) ([]WebhookEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("webhooks file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, fmt.Errorf("webhooks file %s line %d: want a JSON array of {id, url, secret_file}", path, lineAt(data, dec.InputOffset()))
	}
	var out []WebhookEntry
	seen := map[string]int{}
	for dec.More() {
		line := lineAt(data, startOf(data, dec.InputOffset()))
		var fe fileEntry
		if err := dec.Decode(&fe); err != nil {
			return nil, fmt.Errorf("webhooks file %s line %d: %v", path, errLine(data, line, err), err)
		}
		e, err := entry(path, fe, line)
		if err != nil {
			return nil, fmt.Errorf("webhooks file %s line %d: %w", path, line, err)
		}
		if first, dup := seen[e.ID]; dup {
			return nil, fmt.Errorf("webhooks file %s line %d: id %q already given at line %d", path, line, e.ID, first)
		}
		seen[e.ID] = line
		out = append(out, e)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("webhooks file %s line %d: %v", path, lineAt(data, dec.InputOffset()), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("webhooks file %s line %d: more after the array", path, lineAt(data, dec.InputOffset()))
	}
	return out, nil
}

// entry checks one entry and reads its secret.
func entry(path string, fe fileEntry, line int) (WebhookEntry, error) {
	if !webhookID.MatchString(fe.ID) {
		return WebhookEntry{}, fmt.Errorf("id %q: want 1 to 63 of a-z, 0-9, - and _", fe.ID)
	}
	if fe.SecretFile == "" {
		return WebhookEntry{}, fmt.Errorf("id %q: no secret_file", fe.ID)
	}
	if fe.Agency != "" && fe.National {
		return WebhookEntry{}, fmt.Errorf("id %q: both \"agency\" and \"national\": a webhook is one agency's, or the national office's", fe.ID)
	}
	if fe.Agency != "" {
		if err := agency.CheckID(fe.Agency); err != nil {
			return WebhookEntry{}, fmt.Errorf("id %q: %w", fe.ID, err)
		}
	}
	sf := fe.SecretFile
	if !filepath.IsAbs(sf) {
		sf = filepath.Join(filepath.Dir(path), sf)
	}
	secret, err := readSecret(sf)
	if err != nil {
		return WebhookEntry{}, fmt.Errorf("id %q: %w", fe.ID, err)
	}
	w := Webhook{URL: fe.URL, Secret: secret, AllowPrivateHTTP: fe.AllowPrivateHTTP}
	if err := w.Validate(); err != nil {
		return WebhookEntry{}, fmt.Errorf("id %q: %w", fe.ID, err)
	}
	return WebhookEntry{ID: fe.ID, Webhook: w, Agency: fe.Agency, National: fe.National, Line: line}, nil
}

// maxSecret bounds a secret file.
const maxSecret = 4096

// readSecret reads a secret file that only this account may read.
func readSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret file %s: not a regular file", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("secret file %s: owned by uid %d, not by this process (uid %d)", path, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret file %s: mode %s: others may read it (chmod 600 it)", path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return nil, fmt.Errorf("secret file %s: %w", path, err)
	}
	if len(b) > maxSecret {
		return nil, fmt.Errorf("secret file %s: longer than %d bytes: not a secret file?", path, maxSecret)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) < MinSecret {
		return nil, fmt.Errorf("secret file %s: %d bytes, at least %d needed (openssl rand -hex 32)", path, len(b), MinSecret)
	}
	return b, nil
}

// errLine is the line of a decoding error: where the file's syntax
// broke or a value has the wrong type (the offsets of a whole-file
// json.Unmarshal, which count from the file's start), or else the
// entry's first line.
func errLine(data []byte, entry int, _ error) int {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch err := json.Unmarshal(data, new([]fileEntry)); {
	case errors.As(err, &se):
		return lineAt(data, se.Offset)
	case errors.As(err, &te):
		return lineAt(data, te.Offset)
	}
	return entry
}

// startOf skips the blanks and the comma before the next value.
func startOf(data []byte, off int64) int64 {
	for off < int64(len(data)) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',':
			off++
		default:
			return off
		}
	}
	return off
}

// lineAt is the 1-based line of byte offset off.
func lineAt(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return 1 + bytes.Count(data[:off], []byte("\n"))
}
