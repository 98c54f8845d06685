package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"runtime/debug"
	"time"

	"github.com/vigil-oss/vigil/internal/timesync"
)

// buildCommit is the VCS revision set at build time with -ldflags
// "-X main.buildCommit=..." where the Go build info records none (a build
// with -buildvcs=false, or from a source tarball).
var buildCommit = ""

// build is the binary's exact build (docs/evidence.md, "Tool identity"):
// the version (-ldflags -X main.version, else the module version the Go
// build info records, else "dev"), the VCS revision and whether the tree
// had uncommitted changes (the build info's vcs.revision and vcs.modified,
// else -X main.buildCommit; empty and false when neither says, as under
// 'go test').
func build() (ver, commit string, modified bool) {
	ver, commit = version, buildCommit
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ver, commit, false
	}
	if ver == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		ver = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return ver, commit, modified
}

// configUnhashed are the flags of a sensor command left out of its
// configuration hash: the global ones (where the store is, logging, the
// analysis's settings: not what the sensor does) and --bus, --bus-creds
// and --bus-inbox (where the observations go and as which NATS user; its
// URL may hold a password).
var configUnhashed = map[string]bool{"bus": true, "bus-creds": true, "bus-inbox": true}

// configHashedGlobal are the global flags that change what a sensor
// does, hashed with its own: --own-addresses (which addresses it never
// records).
var configHashedGlobal = map[string]bool{"own-addresses": true}

// configHash is the SHA-256, in hex, of a sensor command's effective
// configuration (docs/evidence.md, "Tool identity"): one line
// "NAME=VALUE\n" for every flag of the command but configUnhashed and the
// global flags (but configHashedGlobal), in name order, VALUE as the flag prints it once the
// command line, the environment and the config file have been applied
// (defaults included). A flag naming a file is hashed by its name, not
// its content.
func configHash(fs *flag.FlagSet) string {
	h := sha256.New()
	fs.VisitAll(func(f *flag.Flag) { // VisitAll goes in name order
		if globalFlags[f.Name] && !configHashedGlobal[f.Name] || configUnhashed[f.Name] {
			return
		}
		h.Write([]byte(f.Name + "=" + f.Value.String() + "\n"))
	})
	return hex.EncodeToString(h.Sum(nil))
}

// clockFlags are a sensor command's NTP settings.
type clockFlags struct {
	servers   *string
	every     *time.Duration
	maxOffset *time.Duration
}

func defineClockFlags(fs *flag.FlagSet) *clockFlags {
	d := timesync.DefaultConfig()
	return &clockFlags{
		servers: fs.String("ntp", "", "NTP servers to measure the sensor clock against, `HOST:PORT[,...]` (IP addresses; "+
			"default none: every observation's clock offset is recorded as unknown)"),
		every: fs.Duration("ntp-every", d.Every, "how often the clock offset is measured again"),
		maxOffset: fs.Duration("ntp-max-offset", d.MaxOffset,
			"the largest clock offset trusted: a server putting the clock further off is not believed and the offset is recorded as unknown"),
	}
}

// config is the timesync configuration the flags give.
func (c *clockFlags) config() (timesync.Config, error) {
	cfg := timesync.DefaultConfig()
	var err error
	if cfg.Servers, err = timesync.ParseServers(*c.servers); err != nil {
		return cfg, usagef("--ntp: %v", err)
	}
	cfg.Every, cfg.MaxOffset = *c.every, *c.maxOffset
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("--ntp-every or --ntp-max-offset: %v", err)
	}
	return cfg, nil
}

// clockHelp is the part of a sensor command's help on its clock and
// identity.
const clockHelp = `Clock and identity: with --ntp the sensor measures its clock against the
NTP servers given (IP:port, never a name, only within the scope) when it
starts and every --ntp-every, and records with every observation the
offset (sensor clock minus reference), its uncertainty and its source.
Without --ntp, or when no answer can be trusted (no reply, a malformed
one, one that does not answer the query, servers that disagree, an offset
beyond --ntp-max-offset), the offset is recorded as unknown, never 0, and
the source says why. Every observation also records the sensor's build
(version, VCS commit, modified tree) and the SHA-256 of its effective
configuration: its flags but --bus and the global ones (docs/evidence.md).
`
