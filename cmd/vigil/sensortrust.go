package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// keyFolderTrust is what 'vigil ingest' trusts without --sensor-keys: the
// sensor keys of its key folder, the deployment's own. That is the public
// key of sensor.key (what a sensor started with the same folder signs
// with) and of every sensor-*.key.retired ('vigil sensor key rotate' keeps
// the keys it replaced: observations they signed are still the sensor's).
// A key that is not there is not trusted: a hub between the sensors and
// ingest that signs with a key of its own, under whatever chain id or
// sensor name, gets its observations stored marked signature_failed.
//
// Each key is bound to the sensor names in the names file beside it
// (sensor.names, sensor-*.names.retired: namesFor), which a sensor writes
// its --id into when it starts: what the key signs under another
// sensor's name is failed too. A key without a names file (a folder of an
// earlier version) signs for any name until a sensor writes it.
//
// Ingest reads the public key files the sensor writes beside its keys
// (sensor.pub, sensor-*.pub.retired: pubFor; a folder may hold them
// alone), never a private key that has one. A key file of a folder
// written before those existed has none: its public key is taken from
// the seed, and the log says so once, naming the file, until a sensor
// started with the folder writes it.
//
// Only a key no other user could have put there is read: the folder, and
// each key file (a link's target too), must be writable by no one but
// its owner, a key file owned by ingest's user, root or the folder's
// owner (the sensor's user, who holds its key already), and a regular
// file, and no other user may have made the folder or put it in place
// (placers); else the folder is refused (ingest does not start; later, no key
// is learnt from it until it is put right). A folder under /tmp or a key
// left 0666 would otherwise let any local user plant a retired key.
//
// The folder is read again when an observation comes under a key not yet
// trusted and the folder or its sensor.key changed since it was last read
// (a rotation, or a sensor's first start, while ingest runs): a few stats
// for such an observation, a read only when something changed. A file
// system stamps times from a coarse clock, so a change made in the tick
// of a read leaves them as they were: while the newest time seen is
// within racyWindow of the last read, the next question reads again.
type keyFolderTrust struct {
	dir string
	log *slog.Logger

	mu      sync.Mutex
	seen    folderStamp // the folder and its sensor.key when last read
	racy    bool        // seen is too recent to tell a change by
	keys    [][]byte
	names   map[string][]string // key → the sensor names it signs for (none: any)
	lastErr string              // the last read's error, said once
	seeds   map[string]bool     // key files read for want of a public key file, said once
}

// folderStamp is what tells that a key folder changed: its own
// modification time (a key file made, renamed or removed) and those of
// its sensor.key and sensor.pub (rewritten in place).
type folderStamp struct {
	dir             time.Time
	key, pub, names fileStamp
}

type fileStamp struct {
	at       time.Time
	size, no uint64
}

// racyWindow is how close to a read a time stamp must be for the read not
// to vouch that nothing changed after it (file systems stamp times in
// ticks of a few milliseconds, some in seconds).
const racyWindow = 2 * time.Second

// maxKeyFile is the most bytes read of a key file (a hex seed or public
// key and a line end is 65) or of a names file.
const maxKeyFile = 4096

// sensorPubFile is the public half of sensor.key, which the sensor writes
// beside it (writeSensorPublicKey): what ingest reads.
const sensorPubFile = "sensor.pub"

// sensorNamesFile lists the sensor names sensor.key signs for, one a
// line: each sensor started with the folder adds its --id
// (addSensorName). 'vigil sensor key rotate' copies it beside the key it
// retires (namesFor) and keeps it for the new key.
const sensorNamesFile = "sensor.names"

// namesFor is the names file of the key or public key file keyPath:
// sensor.names for sensor.key and sensor.pub, sensor-T.names.retired for
// sensor-T.key.retired and sensor-T.pub.retired.
func namesFor(keyPath string) string {
	dir, base := filepath.Split(keyPath)
	if base == sensorKeyFile || base == sensorPubFile {
		return filepath.Join(dir, sensorNamesFile)
	}
	base = strings.TrimSuffix(strings.TrimSuffix(base, ".key.retired"), ".pub.retired")
	return filepath.Join(dir, base+".names.retired")
}

// pubFor is the public key file of the key file keyPath: sensor.pub for
// sensor.key, sensor-T.pub.retired for sensor-T.key.retired.
func pubFor(keyPath string) string {
	dir, base := filepath.Split(keyPath)
	if base == sensorKeyFile {
		return filepath.Join(dir, sensorPubFile)
	}
	return filepath.Join(dir, strings.TrimSuffix(base, ".key.retired")+".pub.retired")
}

// newKeyFolderTrust reads the sensor keys of dir (which may not exist
// yet: a sensor makes its key on its first start).
func newKeyFolderTrust(dir string, log *slog.Logger) (*keyFolderTrust, error) {
	k := &keyFolderTrust{dir: dir, log: log}
	if err := k.reload(); err != nil {
		return nil, err
	}
	if len(k.keys) == 0 {
		log.Warn("ingest: no sensor key in the key folder and no --sensor-keys: every signed observation is stored marked signature_failed until a sensor key is made there (a sensor started with the same --key-dir) or given with --sensor-keys", "key_dir", dir)
	}
	for _, key := range k.keys {
		log.Info("ingest: sensor key trusted (key folder)", "key", hex.EncodeToString(key), "sensors", sensorsText(k.names[string(key)]), "key_dir", dir)
	}
	return k, nil
}

// sensorsText is what a key signs for, for the log.
func sensorsText(names []string) string {
	if names == nil {
		return "any (no sensor name given)"
	}
	return strings.Join(names, ", ")
}

// Keys returns the keys read so far.
func (k *keyFolderTrust) Keys() [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([][]byte{}, k.keys...)
}

// Names returns the sensor names each key read so far is bound to
// (evidence.GateConfig.Sensors): a key absent signs for any name.
func (k *keyFolderTrust) Names() map[string][]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string][]string, len(k.names))
	for key, ns := range k.names {
		out[key] = slices.Clone(ns)
	}
	return out
}

// Trusts reads the folder again if it changed, and says whether key is
// one of its sensor keys, with the sensor names it is bound to (nil: any;
// evidence.GateConfig.Trust, asked about a key not trusted yet or a
// sensor name its key is not bound to).
func (k *keyFolderTrust) Trusts(key []byte, sensor string) (bool, []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if st, err := k.stamp(); err != nil || (st == k.seen && !k.racy) {
		return false, nil
	}
	if err := k.reload(); err != nil {
		if err.Error() != k.lastErr { // once, not for every observation
			k.log.Error("ingest: reading the sensor keys of the key folder: no key is learnt from it until it is put right", "key_dir", k.dir, "err", err)
			k.lastErr = err.Error()
		}
		return false, nil
	}
	for _, t := range k.keys {
		if bytes.Equal(t, key) {
			names := k.names[string(key)]
			k.log.Info("ingest: sensor key trusted (found in the key folder)", "key", hex.EncodeToString(key), "sensors", sensorsText(names), "sensor", sensor, "key_dir", k.dir)
			return true, slices.Clone(names)
		}
	}
	return false, nil
}

// stamp stats the folder and its sensor.key.
func (k *keyFolderTrust) stamp() (folderStamp, error) {
	var st folderStamp
	fi, err := os.Stat(k.dir)
	if os.IsNotExist(err) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	st.dir = fi.ModTime()
	st.key = stampOf(filepath.Join(k.dir, sensorKeyFile))
	st.pub = stampOf(filepath.Join(k.dir, sensorPubFile))
	st.names = stampOf(filepath.Join(k.dir, sensorNamesFile))
	return st, nil
}

// stampOf is a file's modification time, size and inode (zero if it is
// not there).
func stampOf(path string) fileStamp {
	var st fileStamp
	if fi, err := os.Stat(path); err == nil {
		st.at, st.size = fi.ModTime(), uint64(fi.Size())
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			st.no = uint64(sys.Ino)
		}
	}
	return st
}

// reload reads every sensor key of the folder; the caller holds mu (or
// owns k).
func (k *keyFolderTrust) reload() error {
	st, err := k.stamp()
	if err != nil {
		return err
	}
	readAt := time.Now()
	fi, err := os.Stat(k.dir)
	if os.IsNotExist(err) {
		k.keys, k.names, k.seen, k.racy, k.lastErr = nil, nil, st, false, ""
		return nil
	}
	if err != nil {
		return err
	}
	if err := writers("key folder", k.dir, fi); err != nil {
		return err
	}
	if err := placers(k.dir, keyOwners(fi)); err != nil {
		return err
	}
	keys, names, err := k.readKeys(keyOwners(fi))
	if err != nil {
		return err
	}
	newest := st.dir
	for _, f := range []fileStamp{st.key, st.pub, st.names} {
		if f.at.After(newest) {
			newest = f.at
		}
	}
	k.keys, k.names, k.seen, k.lastErr = keys, names, st, ""
	// A time ahead of the clock (a clock stepped back since) is no tick of
	// this read: reading again at every question would not end.
	d := readAt.Sub(newest)
	k.racy = d < racyWindow && d > -racyWindow
	return nil
}

// readKeys reads the sensor keys of the folder: each public key file
// (sensor.pub, sensor-*.pub.retired), and, for a key file that has none
// beside it (a folder of an earlier version), its seed (said once for
// each such file), and the sensor names each is bound to (its names
// file, namesFor; none: any name).
func (k *keyFolderTrust) readKeys(owners []uint32) ([][]byte, map[string][]string, error) {
	var keys [][]byte
	names := map[string][]string{}
	stale := k.stalePub()
	for _, kind := range []struct {
		pattern, current string
		seed             bool
	}{{"sensor-*.pub.retired", sensorPubFile, false}, {"sensor-*.key.retired", sensorKeyFile, true}} {
		files, err := filepath.Glob(filepath.Join(k.dir, kind.pattern))
		if err != nil {
			return nil, nil, err
		}
		for _, name := range append(files, filepath.Join(k.dir, kind.current)) {
			current := filepath.Base(name) == kind.current
			switch {
			case current && stale && !kind.seed:
				continue // sensor.pub does not vouch for sensor.key: its seed is read
			case kind.seed && !(current && stale):
				// A link to nothing is no public key file (the first pass
				// passed over it): the seed is read, and said.
				if _, err := os.Stat(pubFor(name)); !os.IsNotExist(err) {
					continue // its public key file is read (or refused) instead
				}
			}
			pub, err := readSensorPublicKey(name, owners, kind.seed)
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			ns, err := readSensorNames(namesFor(name), owners)
			if err != nil && !os.IsNotExist(err) {
				return nil, nil, err
			}
			if err == nil {
				names[string(pub)] = append(names[string(pub)], ns...)
			}
			if kind.seed && !k.seeds[name] {
				if k.seeds == nil {
					k.seeds = map[string]bool{}
				}
				k.seeds[name] = true
				k.log.Warn("ingest: sensor key read from its private seed: no public key file beside it (a sensor of this version writes it when it starts; or write the public key there, in hex)",
					"key_file", name, "public_key_file", pubFor(name), "key", hex.EncodeToString(pub))
			}
			keys = append(keys, pub)
		}
	}
	return keys, names, nil
}

// stalePub reports whether sensor.pub is older than sensor.key: it then
// names a key the sensor no longer has (sensor.key rotated or replaced by
// an earlier version, which did not write sensor.pub), and the seed of
// sensor.key is read instead (said once), until a sensor started with
// the folder writes sensor.pub again. The sensor writes sensor.pub after
// the key it makes.
func (k *keyFolderTrust) stalePub() bool {
	keyPath, pubPath := filepath.Join(k.dir, sensorKeyFile), filepath.Join(k.dir, sensorPubFile)
	kfi, kerr := os.Stat(keyPath)
	pfi, perr := os.Stat(pubPath)
	if kerr != nil || perr != nil || !kfi.ModTime().After(pfi.ModTime()) {
		return false
	}
	if !k.seeds[pubPath] {
		if k.seeds == nil {
			k.seeds = map[string]bool{}
		}
		k.seeds[pubPath] = true
		k.log.Warn("ingest: sensor.pub is older than sensor.key: it may name a key the sensor no longer has (a rotation by an earlier version); sensor.key's seed is read instead until a sensor started with the folder writes sensor.pub",
			"public_key_file", pubPath, "key_file", keyPath)
	}
	return true
}

// writeSensorPublicKey writes the public key pub of the key file keyPath
// beside it (pubFor: sensor.pub for sensor.key), in hex, mode 0644, if it
// is not there already (or older than the key file): ingest reads it, not the private key. It is
// written to a new file renamed over the old, so that a reader never sees
// half of it.
func writeSensorPublicKey(keyPath string, pub ed25519.PublicKey) error {
	path := pubFor(keyPath)
	want := hex.EncodeToString(pub) + "\n"
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() {
		kfi, kerr := os.Stat(keyPath)
		// One older than its key file is written again: ingest takes it
		// for stale (keyFolderTrust.stalePub).
		if b, err := os.ReadFile(path); err == nil && string(b) == want && (kerr != nil || !kfi.ModTime().After(fi.ModTime())) {
			return nil
		}
	}
	if err := replaceFile(path, ".sensor-pub-*", []byte(want)); err != nil {
		return fmt.Errorf("public key %s: %w", path, err)
	}
	return nil
}

// addSensorName adds sensor to the names file of the key file keyPath
// (namesFor: sensor.names), mode 0644, unless it is there already. It is
// written to a new file renamed over the old, so that a reader never sees
// half of it. A name a line of the file cannot hold as it is (empty,
// with a line end, white space around it, or a leading #) is refused.
func addSensorName(keyPath, sensor string) error {
	path := namesFor(keyPath)
	if sensor == "" || strings.ContainsAny(sensor, "\r\n") || strings.TrimSpace(sensor) != sensor || strings.HasPrefix(sensor, "#") {
		return fmt.Errorf("names %s: sensor name %q cannot be a line of it", path, sensor)
	}
	// Sensors started at once with one folder: each reads the file and
	// renames its own over it, so without the lock a name is lost and the
	// ingest of the folder fails all its sensor signs.
	unlock, err := lockKeyFolder(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("names %s: %w", path, err)
	}
	defer unlock()
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("names %s: %w", path, err)
	}
	for _, line := range strings.Split(string(old), "\n") {
		if strings.TrimSpace(line) == sensor {
			return nil
		}
	}
	if len(old) > 0 && !bytes.HasSuffix(old, []byte("\n")) {
		old = append(old, '\n')
	}
	return writeKeyFolderFile(path, append(old, sensor+"\n"...))
}

// lockKeyFolder takes an exclusive lock (flock) on the key folder dir,
// held until unlock: what reads a names file and writes it again holds
// it, so that two sensors starting at once both keep their names. Where
// the folder cannot be locked (flock refused) it goes on unlocked.
func lockKeyFolder(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		// A file system without locks (some network mounts): the name is
		// still written, as before the lock, rather than not at all.
		f.Close()
		return func() {}, nil
	}
	return func() { f.Close() }, nil // closing releases the lock
}

// copySensorNames copies the names file of the key file from (if any)
// to that of the key file to (a key retired), under the folder's lock
// (lockKeyFolder): a sensor starting meanwhile adds its name to both or
// after.
func copySensorNames(from, to string) error {
	unlock, err := lockKeyFolder(filepath.Dir(namesFor(to)))
	if err != nil {
		return err
	}
	defer unlock()
	b, err := os.ReadFile(namesFor(from))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return writeKeyFolderFile(namesFor(to), b)
}

// writeKeyFolderFile writes b to path, mode 0644, through a new file
// renamed over the old.
func writeKeyFolderFile(path string, b []byte) error {
	if err := replaceFile(path, ".sensor-names-*", b); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// replaceFile writes b to a new file beside path (named after pattern,
// as os.CreateTemp), mode 0644, and renames it over path, so that a
// reader sees the old file or the new, never half of one.
func replaceFile(path, pattern string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), pattern)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // nothing once renamed
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	return err
}

// writers says why what fi describes (name) could have been written by
// a user not trusted: others than its owner may write to it (a folder
// with the sticky bit, like /tmp, still lets anyone add a file), or
// (owners given) its owner is none of them.
func writers(what, name string, fi os.FileInfo, owners ...uint32) error {
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s %s: writable by other users (mode %s), who could plant a sensor key: chmod go-w it, or give --sensor-keys", what, name, fi.Mode().Perm())
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || len(owners) == 0 || slices.Contains(owners, sys.Uid) {
		return nil
	}
	return fmt.Errorf("%s %s: owned by user %d, neither ingest's (%d), root nor the key folder's owner (%v): give --sensor-keys", what, name, sys.Uid, os.Geteuid(), owners)
}

// placers says why the key folder dir, or a folder on its path, could
// have been made or put in place by a user not trusted (owners:
// keyOwners): a folder on the path owned by another user, or writable by
// other users, who could put another folder in its place; in one where
// every user may add a name but not move another's (the sticky bit, as
// /tmp), the name under it on the path must be ingest's user's or
// root's: the key folder's owner is trusted as the sensor's user only if
// no other user could have made the folder before the sensor did
// (--key-dir /tmp/vigil-keys, not there yet). Both the path given and
// the one its links lead to are checked (a link is put in place as a
// folder is).
func placers(dir string, owners []uint32) error {
	given, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(given)
	if err != nil {
		return err
	}
	if err := pathPlacers(dir, given, owners); err != nil {
		return err
	}
	return pathPlacers(dir, real, owners)
}

// pathPlacers checks the folders of path (absolute) for placers.
func pathPlacers(dir, path string, owners []uint32) error {
	for child := path; ; {
		parent := filepath.Dir(child)
		if parent == child {
			return nil
		}
		fi, err := os.Stat(parent)
		if err != nil {
			return err
		}
		sys, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		switch {
		case !slices.Contains(owners, sys.Uid):
			return fmt.Errorf("key folder %s: folder %s on its path is owned by user %d, neither ingest's (%d), root nor the key folder's owner, who could put another folder in its place: give --sensor-keys", dir, parent, sys.Uid, os.Geteuid())
		case fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0:
			return fmt.Errorf("key folder %s: folder %s on its path is writable by other users (mode %s), who could put another folder in its place: chmod go-w it, or give --sensor-keys", dir, parent, fi.Mode().Perm())
		case fi.Mode().Perm()&0o022 != 0:
			cfi, err := os.Lstat(child)
			if err != nil {
				return err
			}
			if c, ok := cfi.Sys().(*syscall.Stat_t); ok && c.Uid != 0 && c.Uid != uint32(os.Geteuid()) {
				return fmt.Errorf("key folder %s: %s, in %s where every user may add a name, is owned by user %d: any user could have made it before the sensor did (make it as ingest's user or root, or give --sensor-keys)", dir, child, parent, c.Uid)
			}
		}
		child = parent
	}
}

// keyOwners is who may own a key file of a folder: ingest's user, root,
// and the folder's owner (the sensor's user, who holds the sensor's key
// already: a key it adds gives it nothing more).
func keyOwners(folder os.FileInfo) []uint32 {
	owners := []uint32{uint32(os.Geteuid()), 0}
	if sys, ok := folder.Sys().(*syscall.Stat_t); ok {
		owners = append(owners, sys.Uid)
	}
	return owners
}

// readSensorPublicKey reads a sensor's public key file (hex, as
// writeSensorPublicKey writes it), or, with seed, the public half of a
// sensor key file (a hex seed, as evidence.LoadOrCreateKey writes it),
// never making one. The file (a link's target) must be a regular file
// only ingest's user could have written (writers, owners: keyOwners); a
// FIFO or a device is refused, not waited on.
func readSensorPublicKey(path string, owners []uint32, seed bool) ([]byte, error) {
	b, err := readKeyFolderFile(path, owners)
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	switch {
	case !seed && (err != nil || len(key) != ed25519.PublicKeySize):
		return nil, fmt.Errorf("public key %s: want %d bytes in hex", path, ed25519.PublicKeySize)
	case !seed:
		return key, nil
	case err != nil || len(key) != ed25519.SeedSize:
		return nil, fmt.Errorf("key %s: want %d bytes in hex", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(key).Public().(ed25519.PublicKey), nil
}

// readSensorNames reads a names file (namesFor): one sensor name a line,
// as addSensorName writes them; blank lines and lines starting with #
// are skipped. The file is checked as a key file is (readKeyFolderFile):
// who may write it may bind the key to any name.
func readSensorNames(path string, owners []uint32) ([]string, error) {
	b, err := readKeyFolderFile(path, owners)
	if err != nil {
		return nil, err
	}
	if len(b) >= maxKeyFile {
		return nil, fmt.Errorf("names %s: longer than %d bytes", path, maxKeyFile-1)
	}
	names := []string{} // an empty file binds the key to no name
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") && !slices.Contains(names, line) {
			names = append(names, line)
		}
	}
	return names, nil
}

// readKeyFolderFile reads a file of the key folder (at most maxKeyFile
// bytes). It (a link's target) must be a regular file only ingest's user
// could have written (writers, owners: keyOwners); a FIFO or a device is
// refused, not waited on.
func readKeyFolderFile(path string, owners []uint32) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	if err := writers("key file", path, fi, owners...); err != nil {
		return nil, err
	}
	if real, err := filepath.EvalSymlinks(path); err == nil && filepath.Dir(real) != filepath.Clean(filepath.Dir(path)) {
		// A link out of the folder: its target's folder must be ours too.
		dfi, err := os.Stat(filepath.Dir(real))
		if err != nil {
			return nil, err
		}
		if err := writers("folder", filepath.Dir(real), dfi, owners...); err != nil {
			return nil, fmt.Errorf("key %s links to %s: %w", path, real, err)
		}
	}
	return io.ReadAll(io.LimitReader(f, maxKeyFile))
}
