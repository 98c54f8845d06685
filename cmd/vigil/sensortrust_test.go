package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeSeedKey writes a sensor key file (a hex seed of b bytes) with mode,
// and returns its public key.
func writeSeedKey(t *testing.T, path string, b byte, mode os.FileMode) []byte {
	t.Helper()
	seed := bytes.Repeat([]byte{b}, ed25519.SeedSize)
	if err := os.WriteFile(path, []byte(hex.EncodeToString(seed)+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
}

// trustsKey says whether k trusts key: read at start (Keys, which the
// gate is given) or when asked (Trusts).
func trustsKey(k *keyFolderTrust, key []byte) bool {
	for _, x := range k.Keys() {
		if bytes.Equal(x, key) {
			return true
		}
	}
	ok, _ := k.Trusts(key, "")
	return ok
}

// trusts is k.Trusts of key, whatever the sensor name.
func trusts(k *keyFolderTrust, key []byte) bool {
	ok, _ := k.Trusts(key, "")
	return ok
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestKeyFolderTrustSeesAKeyAddedInTheTickItLastRead: a file system
// stamps a folder's modification time from a coarse clock (a few
// milliseconds; seconds on some). A rotation that makes the new
// sensor.key in the same tick as ingest read the folder (a hub's
// observations under an unknown key make ingest read it at once) leaves
// the folder's time unchanged: the new key must still be found when the
// rotated sensor's first observation asks.
func TestKeyFolderTrustSeesAKeyAddedInTheTickItLastRead(t *testing.T) {
	dir := t.TempDir()
	writeSeedKey(t, filepath.Join(dir, "sensor-20261101T000000.000000000Z.key.retired"), 5, 0o600)
	k, err := newKeyFolderTrust(dir, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if trusts(k, bytes.Repeat([]byte{9}, 32)) { // a hub's key: the folder is read (unchanged)
		t.Fatal("an unknown key is trusted")
	}
	fresh := writeSeedKey(t, filepath.Join(dir, sensorKeyFile), 6, 0o600)
	// Same tick: the folder's time is what it was when last read.
	if err := os.Chtimes(dir, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if !trusts(k, fresh) {
		t.Fatal("a sensor key made in the key folder in the tick ingest last read it is never trusted")
	}
}

// TestKeyFolderTrustSeesSensorKeyRewrittenInPlace: an operator who
// restores sensor.key over the old one (cp, an editor) changes the file,
// not the folder: the key written must be found.
func TestKeyFolderTrustSeesSensorKeyRewrittenInPlace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, sensorKeyFile)
	writeSeedKey(t, path, 5, 0o600)
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{path, dir} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	k, err := newKeyFolderTrust(dir, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	if _, err := f.WriteString(hex.EncodeToString(seed) + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(dir, old, old); err != nil {
		t.Fatal(err)
	}
	if !trusts(k, ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)) {
		t.Fatal("sensor.key rewritten in place is never read again")
	}
}

// TestKeyFolderTrustRefusesKeysOthersCouldPlant: a key only the
// deployment's user could have put there is trusted. A folder or a key
// file other users may write to (a key folder under /tmp, a file left
// 0666) would let any of them plant a retired key and sign forgeries
// under it: ingest refuses to start on it, and a later read trusts no key
// it brings.
func TestKeyFolderTrustRefusesKeysOthersCouldPlant(t *testing.T) {
	t.Run("folder writable by others", func(t *testing.T) {
		dir := t.TempDir()
		writeSeedKey(t, filepath.Join(dir, sensorKeyFile), 3, 0o600)
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if _, err := newKeyFolderTrust(dir, quietLog()); err == nil {
			t.Fatal("a key folder every user may write to is read for trusted keys")
		}
	})
	t.Run("retired key writable by others", func(t *testing.T) {
		dir := t.TempDir()
		planted := writeSeedKey(t, filepath.Join(dir, "sensor-x.key.retired"), 4, 0o666)
		k, err := newKeyFolderTrust(dir, quietLog())
		if err == nil && trustsKey(k, planted) {
			t.Fatal("a retired key file every user may write to is trusted")
		}
	})
	t.Run("planted after start", func(t *testing.T) {
		dir := t.TempDir()
		writeSeedKey(t, filepath.Join(dir, sensorKeyFile), 3, 0o600)
		k, err := newKeyFolderTrust(dir, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		planted := writeSeedKey(t, filepath.Join(dir, "sensor-x.key.retired"), 4, 0o622)
		if trustsKey(k, planted) {
			t.Fatal("a retired key file others may write to, added while ingest runs, is trusted")
		}
	})
	t.Run("symlink to a file others may write", func(t *testing.T) {
		dir, other := t.TempDir(), t.TempDir()
		target := filepath.Join(other, "k")
		planted := writeSeedKey(t, target, 4, 0o666)
		if err := os.Symlink(target, filepath.Join(dir, "sensor-x.key.retired")); err != nil {
			t.Fatal(err)
		}
		k, err := newKeyFolderTrust(dir, quietLog())
		if err == nil && trustsKey(k, planted) {
			t.Fatal("a retired key linked to a file every user may write to is trusted")
		}
	})
}

// TestKeyFolderTrustDoesNotHangOnAFifo: a name the retired-key pattern
// matches that is not a regular file (a FIFO nobody writes to) must not
// stop ingest, which reads the folder while it holds the signature check.
func TestKeyFolderTrustDoesNotHangOnAFifo(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "sensor-x.key.retired"), 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := newKeyFolderTrust(dir, quietLog())
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a FIFO in the key folder's retired keys is taken without a word")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("reading the key folder blocks on a FIFO named as a retired key")
	}
}

// TestKeyFolderTrustFutureTimeIsNotRacy: a key folder stamped ahead of
// the clock (the clock stepped back since) must not make every
// observation under an unknown key read the folder again for as long as
// the clock is behind.
func TestKeyFolderTrustFutureTimeIsNotRacy(t *testing.T) {
	dir := t.TempDir()
	writeSeedKey(t, filepath.Join(dir, sensorKeyFile), 3, 0o600)
	ahead := time.Now().Add(time.Hour)
	for _, p := range []string{filepath.Join(dir, sensorKeyFile), dir} {
		if err := os.Chtimes(p, ahead, ahead); err != nil {
			t.Fatal(err)
		}
	}
	k, err := newKeyFolderTrust(dir, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if k.racy {
		t.Fatal("a folder stamped an hour ahead is read again at every question")
	}
}

// TestKeyFolderTrustTakesTheFolderOwnersKeys: ingest run as another user
// than the sensor (root, or a service account the sensor's folder is
// readable by) reads keys the folder's owner wrote: that user holds the
// sensor's key already, so a key it adds gives it nothing more. Another
// user's file in that folder is still refused.
func TestKeyFolderTrustTakesTheFolderOwnersKeys(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the folder to another user")
	}
	const sensorUser = 54321
	dir := t.TempDir()
	key := writeSeedKey(t, filepath.Join(dir, sensorKeyFile), 3, 0o600)
	for _, p := range []string{filepath.Join(dir, sensorKeyFile), dir} {
		if err := os.Chown(p, sensorUser, sensorUser); err != nil {
			t.Skipf("chown: %v", err)
		}
	}
	k, err := newKeyFolderTrust(dir, quietLog())
	if err != nil {
		t.Fatalf("the sensor user's own key folder: %v", err)
	}
	if !trustsKey(k, key) {
		t.Fatal("the sensor user's sensor.key is not trusted")
	}
	other := writeSeedKey(t, filepath.Join(dir, "sensor-x.key.retired"), 4, 0o600)
	if err := os.Chown(filepath.Join(dir, "sensor-x.key.retired"), sensorUser+1, sensorUser+1); err != nil {
		t.Fatal(err)
	}
	if trustsKey(k, other) {
		t.Fatal("a key file of a third user is trusted")
	}
}

// writePubKey writes a public key file (hex) with mode 0644.
func writePubKey(t *testing.T, path string, pub []byte) {
	t.Helper()
	if err := os.WriteFile(path, []byte(hex.EncodeToString(pub)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKeyFolderTrustReadsPublicKeysNotSeeds: ingest read the sensors'
// private seeds to learn their public keys. It reads the public key files
// the sensor writes beside them (sensor.pub, sensor-*.pub.retired), and
// never a seed that has one: here each seed is of another key than its
// public key file, and only the public key files' keys are trusted.
func TestKeyFolderTrustReadsPublicKeysNotSeeds(t *testing.T) {
	dir := t.TempDir()
	seedKey := writeSeedKey(t, filepath.Join(dir, sensorKeyFile), 5, 0o600)
	seedRetired := writeSeedKey(t, filepath.Join(dir, "sensor-x.key.retired"), 6, 0o600)
	pub := bytes.Repeat([]byte{0xa1}, ed25519.PublicKeySize)
	pubRetired := bytes.Repeat([]byte{0xa2}, ed25519.PublicKeySize)
	writePubKey(t, filepath.Join(dir, sensorPubFile), pub)
	writePubKey(t, filepath.Join(dir, "sensor-x.pub.retired"), pubRetired)
	var logged bytes.Buffer
	k, err := newKeyFolderTrust(dir, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string][]byte{"sensor.pub": pub, "sensor-x.pub.retired": pubRetired} {
		if !trustsKey(k, key) {
			t.Errorf("the key of %s is not trusted", name)
		}
	}
	for name, key := range map[string][]byte{"sensor.key": seedKey, "sensor-x.key.retired": seedRetired} {
		if trustsKey(k, key) {
			t.Errorf("the key of the seed %s, which has a public key file, is trusted: ingest read the private key", name)
		}
	}
	if strings.Contains(logged.String(), "private seed") {
		t.Errorf("a seed read: %s", logged.String())
	}
}

// TestKeyFolderTrustSaysWhenItReadsASeed: a key folder written before the
// sensor wrote public key files has seeds only: their keys are still
// trusted, and the log names each seed read, once.
func TestKeyFolderTrustSaysWhenItReadsASeed(t *testing.T) {
	dir := t.TempDir()
	key := writeSeedKey(t, filepath.Join(dir, sensorKeyFile), 5, 0o600)
	var logged bytes.Buffer
	k, err := newKeyFolderTrust(dir, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !trustsKey(k, key) {
		t.Fatal("an old folder's sensor.key is not trusted")
	}
	retired := writeSeedKey(t, filepath.Join(dir, "sensor-x.key.retired"), 6, 0o600)
	if !trusts(k, retired) {
		t.Fatal("an old folder's retired key is not trusted")
	}
	out := logged.String()
	for _, name := range []string{filepath.Join(dir, sensorKeyFile), filepath.Join(dir, "sensor-x.key.retired")} {
		if !strings.Contains(out, "private seed") || !strings.Contains(out, "key_file="+name) {
			t.Errorf("no warning naming %s: %s", name, out)
		}
		if n := strings.Count(out, "key_file="+name+" "); n != 1 {
			t.Errorf("%s named %d times, want once: %s", name, n, out)
		}
	}
}

// TestKeyFolderTrustRefusesPublicKeysOthersCouldPlant: the public key
// files are held to the rules of the key files: writable by their owner
// only, a regular file (a FIFO is refused, not waited on).
func TestKeyFolderTrustRefusesPublicKeysOthersCouldPlant(t *testing.T) {
	t.Run("writable by others", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "sensor-x.pub.retired")
		writePubKey(t, path, bytes.Repeat([]byte{0xa3}, 32))
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		writeSeedKey(t, filepath.Join(dir, "sensor-x.key.retired"), 4, 0o600)
		if _, err := newKeyFolderTrust(dir, quietLog()); err == nil {
			t.Fatal("a public key file every user may write to is taken")
		}
	})
	t.Run("a FIFO", func(t *testing.T) {
		dir := t.TempDir()
		writeSeedKey(t, filepath.Join(dir, sensorKeyFile), 4, 0o600)
		if err := syscall.Mkfifo(filepath.Join(dir, sensorPubFile), 0o600); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := newKeyFolderTrust(dir, quietLog())
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("a FIFO as sensor.pub is taken without a word")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("reading the key folder blocks on a FIFO named sensor.pub")
		}
	})
}

// TestSensorKeyWritesItsPublicKey: the sensor writes sensor.pub beside
// the key it makes or reads (an old folder's too), and a rotation the
// retired key's public key beside it and the new key's: an ingest of the
// folder then trusts both keys without reading a seed.
func TestSensorKeyWritesItsPublicKey(t *testing.T) {
	dir := t.TempDir()
	old := writeSeedKey(t, filepath.Join(dir, sensorKeyFile), 5, 0o600)
	a := &app{stdout: io.Discard, stderr: io.Discard, log: quietLog()}
	if _, err := a.sensorKey(dir, "bittorrent-1"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, sensorPubFile))
	if err != nil || strings.TrimSpace(string(b)) != hex.EncodeToString(old) {
		t.Fatalf("sensor.pub after the sensor started: %q, %v; want %x", b, err, old)
	}
	code, out, errOut := vigilRun(t, nil, "", "sensor", "key", "rotate", "--key-dir", dir)
	if code != exitOK {
		t.Fatalf("rotate: exit %d %s", code, errOut)
	}
	keys := regexp.MustCompile(`public key ([0-9a-f]{64})`).FindAllStringSubmatch(out, -1)
	if len(keys) != 2 {
		t.Fatalf("rotate printed %q", out)
	}
	retired, _ := filepath.Glob(filepath.Join(dir, "sensor-*.pub.retired"))
	if len(retired) != 1 {
		t.Fatalf("retired public keys: %v", retired)
	}
	for path, want := range map[string]string{retired[0]: keys[0][1], filepath.Join(dir, sensorPubFile): keys[1][1]} {
		b, err := os.ReadFile(path)
		if err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s: %q, %v; want %s", path, b, err, want)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, %v", path, fi.Mode(), err)
		}
	}
	var logged bytes.Buffer
	k, err := newKeyFolderTrust(dir, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		pub, _ := hex.DecodeString(key[1])
		if !trustsKey(k, pub) {
			t.Errorf("key %s not trusted", key[1])
		}
	}
	if strings.Contains(logged.String(), "private seed") {
		t.Errorf("a seed read after the sensor wrote its public keys: %s", logged.String())
	}
}

// TestKeyFolderTrustTakesPublicKeysAlone: a key folder may hold the
// public key files alone (ingest on a host or account that has no
// sensor's private key): they are trusted.
func TestKeyFolderTrustTakesPublicKeysAlone(t *testing.T) {
	dir := t.TempDir()
	pub := bytes.Repeat([]byte{0xb1}, ed25519.PublicKeySize)
	retired := bytes.Repeat([]byte{0xb2}, ed25519.PublicKeySize)
	writePubKey(t, filepath.Join(dir, sensorPubFile), pub)
	writePubKey(t, filepath.Join(dir, "sensor-y.pub.retired"), retired)
	k, err := newKeyFolderTrust(dir, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if !trustsKey(k, pub) || !trustsKey(k, retired) {
		t.Fatal("public key files without their private keys are not trusted")
	}
}

// TestKeyFolderTrustRefusesAFolderAnotherUserMadeInASharedFolder: the
// folder's owner is trusted as the sensor's user, who holds its key
// already. But in a folder where every user may add a name (/tmp, sticky
// or not), any user may make the key folder, or a folder on its path,
// before the sensor does (--key-dir /tmp/vigil-keys, not there yet): he
// then owns it, and his sensor.pub was trusted as the sensor's own.
func TestKeyFolderTrustRefusesAFolderAnotherUserMadeInASharedFolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a folder to another user")
	}
	const intruder = 54322
	forged := bytes.Repeat([]byte{0xc1}, ed25519.PublicKeySize)
	for _, tc := range []struct{ name, made string }{
		{"the key folder itself", "keys"},
		{"a folder on its path", "vigil/keys"},
		{"a link to a folder of his", "keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shared := filepath.Join(t.TempDir(), "shared")
			if err := os.Mkdir(shared, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(shared, 0o1777); err != nil { // as /tmp
				t.Fatal(err)
			}
			dir := filepath.Join(shared, tc.made)
			made, top := dir, shared
			if strings.HasPrefix(tc.name, "a link") {
				// His own folder, elsewhere (his home), and a link to it
				// where the key folder is looked for.
				top = t.TempDir()
				made = filepath.Join(top, "keys")
			}
			if err := os.MkdirAll(made, 0o755); err != nil {
				t.Fatal(err)
			}
			pub := filepath.Join(made, sensorPubFile)
			writePubKey(t, pub, forged)
			for p := pub; p != top; p = filepath.Dir(p) {
				if err := os.Chown(p, intruder, intruder); err != nil {
					t.Skipf("chown: %v", err)
				}
			}
			if made != dir {
				if err := os.Symlink(made, dir); err != nil {
					t.Fatal(err)
				}
				if err := os.Lchown(dir, intruder, intruder); err != nil {
					t.Fatal(err)
				}
			}
			k, err := newKeyFolderTrust(dir, quietLog())
			if err == nil && trustsKey(k, forged) {
				t.Fatal("a key folder another user made in a folder every user may add to is trusted: his sensor.pub is taken as the sensor's")
			}
		})
	}
}

// TestKeyFolderTrustDoesNotTakeASensorPubOlderThanSensorKey: a rotation
// by an earlier version (or a sensor.key replaced by hand, a sensor of an
// earlier version making a new one) renames or replaces sensor.key and
// leaves sensor.pub naming the key it replaced. Ingest trusted that key
// as the sensor's current one (still after its retired key file was
// removed, the key being compromised) and not the key sensor.key holds,
// whose every observation was then stored signature_failed. A sensor.pub
// older than sensor.key does not vouch for it: the seed is read, said in
// the log.
func TestKeyFolderTrustDoesNotTakeASensorPubOlderThanSensorKey(t *testing.T) {
	dir := t.TempDir()
	stale := bytes.Repeat([]byte{0xd1}, ed25519.PublicKeySize)
	pubPath := filepath.Join(dir, sensorPubFile)
	writePubKey(t, pubPath, stale)
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(pubPath, past, past); err != nil {
		t.Fatal(err)
	}
	current := writeSeedKey(t, filepath.Join(dir, sensorKeyFile), 7, 0o600)
	var logged bytes.Buffer
	k, err := newKeyFolderTrust(dir, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if trustsKey(k, stale) {
		t.Error("the key of a sensor.pub older than sensor.key (a key the sensor no longer has) is trusted")
	}
	if !trustsKey(k, current) {
		t.Error("the key of sensor.key, newer than its sensor.pub, is not trusted")
	}
	if !strings.Contains(logged.String(), "older than") {
		t.Errorf("the stale sensor.pub is not said: %s", logged.String())
	}
}

// TestSensorKeyRefreshesAnOlderSensorPub: a sensor.pub older than
// sensor.key is read by ingest as stale (the seed instead). One that
// names the right key (sensor.key restored from a copy, say) is written
// again when the sensor starts, so that ingest reads it, not the seed.
func TestSensorKeyRefreshesAnOlderSensorPub(t *testing.T) {
	dir := t.TempDir()
	key := writeSeedKey(t, filepath.Join(dir, sensorKeyFile), 8, 0o600)
	pubPath := filepath.Join(dir, sensorPubFile)
	writePubKey(t, pubPath, key)
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(pubPath, past, past); err != nil {
		t.Fatal(err)
	}
	a := &app{stdout: io.Discard, stderr: io.Discard, log: quietLog()}
	if _, err := a.sensorKey(dir, "bittorrent-1"); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	k, err := newKeyFolderTrust(dir, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !trustsKey(k, key) {
		t.Fatal("sensor key not trusted")
	}
	if strings.Contains(logged.String(), "older than") || strings.Contains(logged.String(), "private seed") {
		t.Errorf("the sensor started and its sensor.pub is still read as stale: %s", logged.String())
	}
}

// TestKeyFolderTrustDanglingSensorPubIsNoSilentDistrust: a sensor.pub
// that is a link to nothing (its target removed) was passed over as
// missing, and sensor.key's seed passed over too as having one: the
// sensor's key was trusted by nothing, and nothing said so.
func TestKeyFolderTrustDanglingSensorPubIsNoSilentDistrust(t *testing.T) {
	dir := t.TempDir()
	key := writeSeedKey(t, filepath.Join(dir, sensorKeyFile), 9, 0o600)
	if err := os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, sensorPubFile)); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	k, err := newKeyFolderTrust(dir, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		return // refused, and said: not silent
	}
	if !trustsKey(k, key) && !strings.Contains(logged.String(), sensorPubFile) {
		t.Fatalf("sensor.key not trusted and nothing said: %s", logged.String())
	}
}

// TestKeyFolderBindsKeysToSensorNames: each sensor started with a key
// folder adds its name to sensor.names; ingest, trusting the folder,
// binds the key to those names; a rotation keeps them for the new key
// and copies them beside the retired one; a sensor started under a new
// name while ingest runs is found when its first observation asks. A
// key without a names file (a folder of an earlier version) signs for
// any name.
func TestKeyFolderBindsKeysToSensorNames(t *testing.T) {
	dir := t.TempDir()
	a := &app{stdout: io.Discard, stderr: io.Discard, log: quietLog()}
	key, err := a.sensorKey(dir, "bittorrent-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.sensorKey(dir, "bittorrent-1"); err != nil { // again: listed once
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, sensorNamesFile)); err != nil || string(b) != "bittorrent-1\n" {
		t.Fatalf("sensor.names: %q, %v", b, err)
	}
	if code, _, errOut := vigilRun(t, nil, "", "sensor", "key", "rotate", "--key-dir", dir); code != exitOK {
		t.Fatalf("rotate: exit %d %s", code, errOut)
	}
	retired, _ := filepath.Glob(filepath.Join(dir, "sensor-*.names.retired"))
	if len(retired) != 1 {
		t.Fatalf("names beside the retired key: %v", retired)
	}
	legacy := bytes.Repeat([]byte{0xc3}, ed25519.PublicKeySize) // no names file
	writePubKey(t, filepath.Join(dir, "sensor-old.pub.retired"), legacy)
	k, err := newKeyFolderTrust(dir, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	names := k.Names()
	old := string(key.Public().(ed25519.PublicKey))
	var current string
	for _, x := range k.Keys() {
		if string(x) != old && !bytes.Equal(x, legacy) {
			current = string(x)
		}
	}
	for what, key := range map[string]string{"retired": old, "current": current} {
		if got := names[key]; len(got) != 1 || got[0] != "bittorrent-1" {
			t.Errorf("%s key bound to %q, want bittorrent-1", what, got)
		}
	}
	if _, ok := names[string(legacy)]; ok {
		t.Errorf("a key without a names file is bound: %q", names[string(legacy)])
	}
	// Another sensor starts with the folder while ingest runs.
	if err := addSensorName(filepath.Join(dir, sensorKeyFile), "ed2k-1"); err != nil {
		t.Fatal(err)
	}
	ok, got := k.Trusts([]byte(current), "ed2k-1")
	if !ok || len(got) != 2 || got[1] != "ed2k-1" {
		t.Errorf("after ed2k-1 started: trusted %v, bound to %q", ok, got)
	}
	for _, bad := range []string{"", "a\nb", " a", "#a"} {
		if err := addSensorName(filepath.Join(dir, sensorKeyFile), bad); err == nil {
			t.Errorf("name %q written", bad)
		}
	}
}
