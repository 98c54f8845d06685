package observe

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"sync"
)

// sensorMemo is a sensor hash remembered (RememberSensorHash) with the
// fingerprint of the fields it was computed from.
type sensorMemo struct {
	hash  [32]byte
	print uint64 // sensorPrint when hash was remembered
	set   bool
	// transcript: the transcript's bytes were found to be the ones
	// transcript_sha256 names (RememberTranscriptChecked).
	transcript bool
}

// printSeed is this process's seed for sensorPrint: a fingerprint is
// never written anywhere, and one process's cannot be foreseen.
var printSeed = maphash.MakeSeed()

var printPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// sensorPrint is a 64-bit fingerprint (hash/maphash, seeded per process)
// of every field the sensor hash covers, in either evidence form, and of
// the transcript's bytes: everything in o but the keys ingest adds
// (Place, Jurisdiction, Chain.BatchSig: canon.IngestKeys) and the memo.
// Each field is written whole and with its length, so that two
// observations with the same fingerprint have, but for a chance of 2^-64
// no one can aim at, the same sensor hash. It is much cheaper than the
// sensor hash (no JSON, no SHA-256). TestSensorPrintCoversEveryField
// changes each field in turn: a field added to Observation must be added
// here, or to the fields left out there.
func (o *Observation) sensorPrint() uint64 {
	bp := printPool.Get().(*[]byte)
	b := (*bp)[:0]
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	byt := func(s []byte) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	num := func(v uint64) { b = binary.LittleEndian.AppendUint64(b, v) }
	flag := func(v bool) {
		if v {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	str(o.ID)
	s := &o.Sensor
	str(s.ID)
	str(s.Version)
	str(s.Vantage)
	str(s.Commit)
	flag(s.Modified)
	str(s.Config)
	str(o.Network)
	str(o.Method)
	// The instant (the sensor hash writes it in UTC), whatever the zone.
	num(uint64(o.Time.Unix()))
	num(uint64(o.Time.Nanosecond()))
	flag(o.Time.IsZero())
	flag(o.ClockKnown)
	num(uint64(o.ClockOffset))
	num(uint64(o.ClockUncertainty))
	str(o.ClockSource)
	b = append(b, byte(o.Item.Hash.Kind()))
	byt(o.Item.Hash.Digest())
	num(uint64(len(o.Item.Matched)))
	for _, m := range o.Item.Matched {
		str(m.List)
		str(m.Category)
	}
	e := &o.Endpoint
	addr := func(a netip.Addr) {
		num(uint64(a.BitLen()))
		a16 := a.As16()
		b = append(b, a16[:]...)
		str(a.Zone())
	}
	addr(e.IP)
	num(uint64(e.Port))
	str(e.Transport)
	addr(e.Local.Addr())
	num(uint64(e.Local.Port()))
	c := &o.Client
	byt(c.PeerID)
	str(c.Name)
	str(c.Version)
	num(uint64(c.ListenPort))
	byt(c.NodeID)
	byt(c.UserHash)
	byt(c.GUID)
	num(uint64(o.Possession.Level))
	num(uint64(o.Possession.PiecesHave))
	num(uint64(o.Possession.PiecesTotal))
	sm := sensorMarks(o.Marks) // ingest's marks (IngestMarks) are not covered
	num(uint64(len(sm)))
	for _, m := range sm {
		str(m)
	}
	t := &o.Transcript
	byt(t.Bytes)
	str(t.Ref)
	byt(t.SHA256)
	ch := &o.Chain
	byt(ch.Key)
	str(ch.ID)
	num(ch.Seq)
	byt(ch.Prev)
	b = append(b, ch.Form)
	p := maphash.Bytes(printSeed, b)
	*bp = b
	printPool.Put(bp)
	return p
}
