package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// keyFolderTrust is what 'vigil ingest' trusts without --sensor-keys: the
// sensor keys of its key folder, the deployment's own. That is
// sensor.key (what a sensor started with the same folder signs with) and
// every sensor-*.key.retired ('vigil sensor key rotate' keeps the keys it
// replaced: observations they signed are still the sensor's). A key that
// is not there is not trusted: a hub between the sensors and ingest that
// signs with a key of its own, under whatever chain id or sensor name,
// gets its observations stored marked signature_failed.
//
// The folder is read again when an observation comes under a key not yet
// trusted and the folder changed since it was last read (a rotation, or a
// sensor's first start, while ingest runs): one stat of the folder for
// such an observation, a read only when it changed.
type keyFolderTrust struct {
	dir string
	log *slog.Logger

	mu    sync.Mutex
	read  time.Time // the folder's modification time when last read
	keys  [][]byte
	noted bool // the folder was found without a sensor key, and it was said
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
		k.noted = true
	}
	for _, key := range k.keys {
		log.Info("ingest: sensor key trusted (key folder)", "key", hex.EncodeToString(key), "key_dir", dir)
	}
	return k, nil
}

// Keys returns the keys read so far.
func (k *keyFolderTrust) Keys() [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([][]byte{}, k.keys...)
}

// Trusts reads the folder again if it changed, and says whether key is
// one of its sensor keys (evidence.GateConfig.Trust).
func (k *keyFolderTrust) Trusts(key []byte) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	fi, err := os.Stat(k.dir)
	if err != nil || fi.ModTime().Equal(k.read) {
		return false
	}
	if err := k.reload(); err != nil {
		k.log.Error("ingest: reading the sensor keys of the key folder", "key_dir", k.dir, "err", err)
		return false
	}
	for _, t := range k.keys {
		if bytes.Equal(t, key) {
			k.log.Info("ingest: sensor key trusted (found in the key folder)", "key", hex.EncodeToString(key), "key_dir", k.dir)
			return true
		}
	}
	return false
}

// reload reads every sensor key of the folder; the caller holds mu (or
// owns k).
func (k *keyFolderTrust) reload() error {
	fi, err := os.Stat(k.dir)
	if os.IsNotExist(err) {
		k.keys = nil
		return nil
	}
	if err != nil {
		return err
	}
	names, err := filepath.Glob(filepath.Join(k.dir, "sensor-*.key.retired"))
	if err != nil {
		return err
	}
	names = append(names, filepath.Join(k.dir, sensorKeyFile))
	var keys [][]byte
	for _, name := range names {
		pub, err := readSensorPublicKey(name)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		keys = append(keys, pub)
	}
	k.keys, k.read = keys, fi.ModTime()
	return nil
}

// readSensorPublicKey reads the public half of a sensor key file (a hex
// seed, as evidence.LoadOrCreateKey writes it), never making one.
func readSensorPublicKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("key %s: want %d bytes in hex", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), nil
}
