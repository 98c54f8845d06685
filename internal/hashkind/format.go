package hashkind

// String returns the digest in the form customary for its kind: lower-case
// hex for md5, sha1, sha256, ed2k, btv2, btih and btih2; upper-case base32
// without padding for tth (as DC++ and Gnutella print it). The zero Hash
// prints as "". Parse(h.String(), h.Kind()) gives h back.
func (h Hash) String() string {
	switch h.kind {
	case Unknown:
		return ""
	case TTH:
		return h.Base32()
	}
	return h.Hex()
}

// Base32 returns the digest in upper-case RFC 4648 base32 without padding,
// whatever the kind (the form of sha1 URNs and base32 info-hashes).
func (h Hash) Base32() string {
	if h.kind == Unknown {
		return ""
	}
	return b32.EncodeToString(h.sum[:h.kind.Size()])
}

// URN returns the hash as the URN that magnet links and Gnutella use:
// urn:md5:HEX, urn:sha1:BASE32, urn:sha256:HEX, urn:ed2k:HEX,
// urn:tree:tiger:BASE32, urn:btih:HEX and, for a v2 info-hash, its sha2-256
// multihash urn:btmh:1220HEX. A v2 per-file root (btv2) has no URN and the
// zero Hash none either: URN returns "" for both.
func (h Hash) URN() string {
	switch h.kind {
	case MD5:
		return "urn:md5:" + h.Hex()
	case SHA1:
		return "urn:sha1:" + h.Base32()
	case SHA256:
		return "urn:sha256:" + h.Hex()
	case ED2K:
		return "urn:ed2k:" + h.Hex()
	case TTH:
		return "urn:tree:tiger:" + h.Base32()
	case BTIH:
		return "urn:btih:" + h.Hex()
	case BTIH2:
		return "urn:btmh:1220" + h.Hex()
	}
	return ""
}

// Magnet returns a magnet link that names only this hash
// ("magnet:?xt=urn:btih:HEX"; for btih2 "magnet:?xt=urn:btmh:1220HEX"), or ""
// for a kind with no URN (btv2, the zero Hash). Magnets of the other kinds
// are the Gnutella and eMule kind.
func (h Hash) Magnet() string {
	u := h.URN()
	if u == "" {
		return ""
	}
	return "magnet:?xt=" + u
}

// MarshalText implements encoding.TextMarshaler. The text is "KIND:VALUE",
// the kind's name and String's customary form ("sha1:da39a3ee…",
// "tth:LWPNACQ…"), so that it names its kind even where the length alone
// would not (md5 and ed2k, sha256 and btih2). The zero Hash is "".
func (h Hash) MarshalText() ([]byte, error) {
	if h.kind == Unknown {
		return []byte{}, nil
	}
	return []byte(h.kind.String() + ":" + h.String()), nil
}

// AppendText implements encoding.TextAppender, the MarshalText form.
func (h Hash) AppendText(b []byte) ([]byte, error) {
	if h.kind == Unknown {
		return b, nil
	}
	b = append(b, h.kind.String()...)
	b = append(b, ':')
	return append(b, h.String()...), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. It reads what
// MarshalText writes, and any other form Parse reads without a hint; ""
// gives the zero Hash.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*h = Hash{}
		return nil
	}
	v, err := ParseBytes(b, Unknown)
	if err != nil {
		return err
	}
	*h = v
	return nil
}
