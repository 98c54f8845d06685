package observe

import (
	"bytes"
	"slices"
)

// Equal reports whether o and p record the same observation: every field
// equal, times compared as instants, and nil and empty byte slices and
// match lists taken as the same (no store or file tells them apart).
func (o *Observation) Equal(p *Observation) bool {
	return o.ID == p.ID &&
		o.Sensor == p.Sensor &&
		o.Network == p.Network &&
		o.Method == p.Method &&
		o.Time.Equal(p.Time) &&
		o.ClockKnown == p.ClockKnown &&
		o.ClockOffset == p.ClockOffset &&
		o.ClockUncertainty == p.ClockUncertainty &&
		o.ClockSource == p.ClockSource &&
		o.Item.Hash == p.Item.Hash &&
		slices.Equal(o.Item.Matched, p.Item.Matched) &&
		o.Endpoint == p.Endpoint &&
		bytes.Equal(o.Client.PeerID, p.Client.PeerID) &&
		o.Client.Name == p.Client.Name &&
		o.Client.Version == p.Client.Version &&
		o.Client.ListenPort == p.Client.ListenPort &&
		bytes.Equal(o.Client.NodeID, p.Client.NodeID) &&
		bytes.Equal(o.Client.UserHash, p.Client.UserHash) &&
		bytes.Equal(o.Client.GUID, p.Client.GUID) &&
		o.Possession == p.Possession &&
		slices.Equal(o.Marks, p.Marks) &&
		bytes.Equal(o.Transcript.Bytes, p.Transcript.Bytes) &&
		o.Transcript.Ref == p.Transcript.Ref &&
		bytes.Equal(o.Transcript.SHA256, p.Transcript.SHA256) &&
		o.Place.Equal(&p.Place) &&
		o.Jurisdiction == p.Jurisdiction &&
		bytes.Equal(o.Chain.Key, p.Chain.Key) && o.Chain.ID == p.Chain.ID && o.Chain.Seq == p.Chain.Seq &&
		bytes.Equal(o.Chain.Prev, p.Chain.Prev) && bytes.Equal(o.Chain.BatchSig, p.Chain.BatchSig) &&
		o.Chain.Form == p.Chain.Form
}

// Equal reports whether two places say the same, build times compared as
// instants and nil and empty subdivision lists taken as the same.
func (p *Place) Equal(q *Place) bool {
	return p.Country == q.Country && slices.Equal(p.Subdivisions, q.Subdivisions) && p.City == q.City &&
		p.Lat == q.Lat && p.Lon == q.Lon && p.ASN == q.ASN && p.Org == q.Org && p.DB == q.DB &&
		p.DBBuild.Equal(q.DBBuild) && p.VPN == q.VPN && p.Hosting == q.Hosting
}
