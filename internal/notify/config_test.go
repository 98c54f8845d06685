package notify_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/notify"
)

func TestParseSMTPURL(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		addr    string
		from    string
		tls     notify.TLSPolicy
		errWord string // in the error, when one is wanted
	}{
		{raw: "smtp://mail.example.org:587?from=alerts@vigil.example", addr: "mail.example.org:587", from: "alerts@vigil.example", tls: notify.TLSAuto},
		{raw: "smtp://mail.example.org?from=alerts@vigil.example", addr: "mail.example.org:25", from: "alerts@vigil.example"},
		{raw: "smtp://127.0.0.1:2525?from=a@b.example&starttls=off", addr: "127.0.0.1:2525", from: "a@b.example", tls: notify.TLSOff},
		{raw: "smtp://[::1]:25?from=a@b.example&starttls=required", addr: "[::1]:25", from: "a@b.example", tls: notify.TLSRequired},
		{raw: "smtp://mail.example.org:25?from=Vigil%20%3Calerts@vigil.example%3E", addr: "mail.example.org:25", from: "Vigil <alerts@vigil.example>"},
		{raw: "smtp://mail.example.org:25", errWord: "from"},
		{raw: "smtps://mail.example.org:465?from=a@b.example", errWord: "scheme"},
		{raw: "smtp://user:hunter2@mail.example.org:25?from=a@b.example", errWord: "credentials"},
		{raw: "smtp://mail.example.org:25?from=a@b.example&starttls=maybe", errWord: "starttls"},
		{raw: "smtp://mail.example.org:25?from=a@b.example&to=c@d.example", errWord: "unknown parameter"},
		{raw: "smtp://mail.example.org:25?from=a@b.example&from=c@d.example", errWord: "2 times"},
		{raw: "smtp://mail.example.org:25?from=a@b.example%0D%0ABcc:%20evil@attacker.example", errWord: "control character"},
		{raw: "smtp:///?from=a@b.example", errWord: "no host"},
		{raw: "smtp://mail.example.org:25/x?from=a@b.example", errWord: "path"},
		{raw: "mail.example.org:25", errWord: "scheme"},
	} {
		s, err := notify.ParseSMTPURL(tc.raw)
		if tc.errWord != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errWord) || !strings.Contains(err.Error(), "--alert-smtp") {
				t.Errorf("%s: %v, want an error naming --alert-smtp and %q", tc.raw, err, tc.errWord)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("%s: the error shows the password: %v", tc.raw, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.raw, err)
			continue
		}
		if s.Addr != tc.addr || s.From != tc.from || s.TLS != tc.tls || len(s.To) != 0 {
			t.Errorf("%s: %+v, want addr %s from %s tls %s", tc.raw, s, tc.addr, tc.from, tc.tls)
		}
	}
}

// writeFile writes name under dir with mode and returns its path.
func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

const goodSecret = "3f1c9a0b7d2e4f6a8b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a"

func TestLoadWebhooks(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "ocrtis.key", goodSecret+"\n", 0o600)
	abs := writeFile(t, dir, "lyon.key", goodSecret+"\r\n", 0o400)
	path := writeFile(t, dir, "webhooks.json", `[
  {"id": "ocrtis-desk", "national": true, "url": "https://hooks.ocrtis.example/vigil", "secret_file": "ocrtis.key"},
  {"id": "lyon", "agency": "fr-lyon", "url": "http://10.20.0.5:8080/hook", "secret_file": "`+abs+`", "allow_private_http": true},
  {"id": "old", "url": "https://hooks.old.example/vigil", "secret_file": "ocrtis.key"}
]
`, 0o644)
	got, err := notify.LoadWebhooks(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != "ocrtis-desk" || got[1].ID != "lyon" || got[0].Line != 2 || got[1].Line != 3 {
		t.Fatalf("entries %+v", got)
	}
	// Whose alerts each receives: the national office's, Lyon's, and (a
	// file written before webhooks had an agency) nobody's.
	if !got[0].National || got[0].Agency != "" || !got[0].Bound() || got[1].National || got[1].Agency != "fr-lyon" || !got[1].Bound() || got[2].Bound() {
		t.Fatalf("bindings %+v", got)
	}
	for _, e := range got {
		if string(e.Webhook.Secret) != goodSecret {
			t.Errorf("%s: secret of %d bytes, want the file's line without its end", e.ID, len(e.Webhook.Secret))
		}
	}
	if got[0].Webhook.URL != "https://hooks.ocrtis.example/vigil" || !got[1].Webhook.AllowPrivateHTTP {
		t.Errorf("entries %v", got)
	}
}

func TestLoadWebhooksRefuses(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "ok.key", goodSecret, 0o600)
	writeFile(t, dir, "shared.key", goodSecret, 0o640)
	writeFile(t, dir, "world.key", goodSecret, 0o604)
	writeFile(t, dir, "short.key", "0123456789abcdef0123456789abcde\n", 0o600)
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	entry := func(id, url, key string) string {
		return `{"id": "` + id + `", "url": "` + url + `", "secret_file": "` + key + `"}`
	}
	ok := entry("ok", "https://h.example/x", "ok.key")
	for _, tc := range []struct {
		name, file string
		line       int
		word       string
	}{
		{"group may read", "[\n" + ok + ",\n" + entry("b", "https://h.example/x", "shared.key") + "\n]", 3, "others may read"},
		{"anyone may read", "[\n" + entry("b", "https://h.example/x", "world.key") + "\n]", 2, "others may read"},
		{"short secret", "[\n\n" + entry("b", "https://h.example/x", "short.key") + "\n]", 3, "at least 32"},
		{"missing secret file", "[\n" + entry("b", "https://h.example/x", "none.key") + "\n]", 2, "none.key"},
		{"a directory", "[\n" + entry("b", "https://h.example/x", "adir") + "\n]", 2, "regular"},
		{"no secret file", "[\n" + entry("b", "https://h.example/x", "") + "\n]", 2, "secret_file"},
		{"plain http outside", "[\n" + ok + ",\n\n" + entry("b", "http://h.example/x", "ok.key") + "\n]", 4, "https"},
		{"duplicate id", "[\n" + ok + ",\n" + ok + "\n]", 3, "line 2"},
		{"bad id", "[\n" + entry("Bad Id", "https://h.example/x", "ok.key") + "\n]", 2, "id"},
		{"unknown field", "[\n" + ok + ",\n" + `{"id": "c", "url": "https://h.example/x", "secret": "` + goodSecret + `"}` + "\n]", 3, "unknown field"},
		{"syntax", "[\n" + ok + ",\n{\"id\": \n]", 4, "invalid"},
		{"wrong type", "[\n" + ok + ",\n{\"url\": \"https://h.example/x\",\n \"id\": 5}\n]", 4, "cannot unmarshal"},
		{"not an array", `{"id": "a"}`, 1, "array"},
		{"agency and national", "[\n" + ok + ",\n" + `{"id": "c", "agency": "fr-lyon", "national": true, "url": "https://h.example/x", "secret_file": "ok.key"}` + "\n]", 3, "national"},
		{"bad agency", "[\n" + `{"id": "c", "agency": "Lyon PJ", "url": "https://h.example/x", "secret_file": "ok.key"}` + "\n]", 2, "agency id"},
		{"trailing text", "[\n" + ok + "\n]\n[]", 4, "more after"},
	} {
		path := writeFile(t, dir, "hooks.json", tc.file, 0o644)
		_, err := notify.LoadWebhooks(path)
		if err == nil {
			t.Errorf("%s: loaded", tc.name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, path) || !strings.Contains(msg, "line "+strconv.Itoa(tc.line)) || !strings.Contains(msg, tc.word) {
			t.Errorf("%s: %v, want the file, line %d and %q", tc.name, err, tc.line, tc.word)
		}
		if strings.Contains(msg, goodSecret[:16]) {
			t.Errorf("%s: the error shows the secret: %v", tc.name, err)
		}
	}
}
