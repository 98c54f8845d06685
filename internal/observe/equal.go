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
		o.ClockOffset == p.ClockOffset &&
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
		bytes.Equal(o.Transcript.Bytes, p.Transcript.Bytes) &&
		o.Transcript.Ref == p.Transcript.Ref &&
		bytes.Equal(o.Transcript.SHA256, p.Transcript.SHA256)
}
