package accuracy

import (
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Why an observation, a link or an ISP row is false.
const (
	// An observation.
	WhySensorItself  = "sensor_itself"         // the endpoint is the sensor's own address
	WhyNoDevice      = "no_device"             // no lab device used that IP then (nor within the stale window)
	WhyNeverHadItem  = "never_had_item"        // the device there never had the torrent
	WhyLevelAbove    = "level_above_shown"     // the level exceeds what the device's well-formed messages showed
	WhyPiecesAbove   = "pieces_above_shown"    // pieces_have exceeds the in-range pieces it advertised
	WhyVerifiedFalse = "verified_not_held"     // verified, but the device did not hold every piece
	WhyOtherDevice   = "other_device"          // a link or row joins or names another device
	WhyThirdParty    = "third_party"           // an ISP row from a claim by someone else
	WhyWrongPort     = "wrong_port"            // an ISP row whose port is not the device's
	WhyUnknownDevice = "endpoint_not_a_device" // a link end or row at no device (or the sensor)
)

// Networks a measurement runs on (Config.Network, Inputs.Network).
const (
	NetworkBitTorrent = "bittorrent"
	NetworkED2K       = "ed2k" // eD2K servers and Kad
)

// Inputs is what Evaluate compares: the ground truth, in the times the
// store holds (see Config.Shift), and what the pipeline recorded.
type Inputs struct {
	// Network is the network measured: NetworkBitTorrent ("" too) or
	// NetworkED2K. It decides the methods and link rules reported, and
	// what each method's recall counts (methodRecall).
	Network string
	Truth   lab.Truth
	// Sensor are the sensor's own IP addresses.
	Sensor []netip.Addr
	// Observations are every stored observation.
	Observations []observe.Observation
	// Targets are every target with its links and timeline, and Rows its
	// ISP request rows, by target id.
	Targets []analysis.TargetDetail
	Rows    map[string][]isp.Row
	// StaleWindow is how long after a device left an address a third
	// party's claim that it is there still counts as true.
	StaleWindow time.Duration
}

// Row is one line of a table of observations: a level or a method.
type Row struct {
	Name         string  `json:"name"`
	Observations int     `json:"observations"`
	TruePos      int     `json:"true_positives"`
	FalsePos     int     `json:"false_positives"`
	FPRate       float64 `json:"false_positive_rate"`
	AboveHeld    int     `json:"above_held"`
	Detectable   int     `json:"detectable"` // -1: not measured
	Detected     int     `json:"detected"`
	Recall       float64 `json:"recall"` // -1: not measured
}

// LinkRow is one link rule's line.
type LinkRow struct {
	Rule      string  `json:"rule"`
	Made      int     `json:"made"` // active links
	Correct   int     `json:"correct"`
	Wrong     int     `json:"wrong"`
	FPRate    float64 `json:"false_positive_rate"`
	Withdrawn int     `json:"withdrawn"`
}

// ISPRow sums the ISP request rows of every target.
type ISPRow struct {
	Rows    int            `json:"rows"`
	Right   int            `json:"right"`
	Wrong   int            `json:"wrong"`
	FPRate  float64        `json:"false_positive_rate"`
	WrongBy map[string]int `json:"wrong_by"`
}

// Targets sums how targets map to devices.
type Targets struct {
	Targets int `json:"targets"`
	// OneDevice: every endpoint-time of the target is one device's.
	OneDevice int `json:"one_device"`
	// Mixed: endpoint-times of two or more devices.
	Mixed int `json:"mixed_devices"`
	// NoDevice: no endpoint-time is a device (the sensor, an address
	// nobody used); SensorItself: every one is the sensor's address.
	NoDevice     int `json:"no_device"`
	SensorItself int `json:"sensor_itself"`
	// NeverHad: none of the target's devices ever had one of its files.
	NeverHad int `json:"never_had_any_file"`
	// Movers are devices seen at two or more endpoints, and Joined those
	// whose endpoints all ended in one target.
	Movers int `json:"devices_at_several_endpoints"`
	Joined int `json:"joined_in_one_target"`
	// MixedDevices names the devices of each mixed target ("a + b").
	MixedDevices []string `json:"mixed_target_devices"`
}

// DeviceRow is what was recorded about one device and torrent (torrent
// -1: observations of a torrent the device never had).
type DeviceRow struct {
	Device       string `json:"device"`
	Kind         string `json:"kind"`
	Torrent      int    `json:"torrent"`
	Shown        string `json:"shown"`
	ShownPieces  int    `json:"shown_pieces"`
	HeldPieces   int    `json:"held_pieces"`
	Pieces       int    `json:"pieces"`
	Observations int    `json:"observations"`
	False        int    `json:"false_positives"`
	MaxRecorded  string `json:"max_recorded,omitempty"` // "" when nothing was recorded
	MaxPieces    int    `json:"max_pieces_recorded"`
}

// Report is what 'vigil lab accuracy' prints.
type Report struct {
	// Network is the network measured (NetworkBitTorrent, NetworkED2K).
	Network  string         `json:"network"`
	Seed     uint64         `json:"seed"`
	Duration time.Duration  `json:"duration_ns"`
	Shift    time.Duration  `json:"epoch_shift_ns"`
	Commit   string         `json:"commit,omitempty"`
	Devices  map[string]int `json:"devices_by_kind"`
	Forged   int            `json:"forged_dht_replies_sent"`
	Levels   []Row          `json:"levels"`
	Methods  []Row          `json:"methods"`
	FalseBy  map[string]int `json:"false_positives_by_reason"`
	// ByKind counts false observations by the kind of device they were
	// about ("" for none).
	FalseByKind map[string]int `json:"false_positives_by_device_kind"`
	// FalseDetail counts false observations by "level reason kind".
	FalseDetail map[string]int `json:"false_positives_by_level_reason_kind"`
	// WrongLinks names the devices each wrong link joined: "rule: a + b"
	// ("(none)" for an end at no device or the sensor).
	WrongLinks []string    `json:"wrong_links"`
	Links      []LinkRow   `json:"links"`
	ISP        ISPRow      `json:"isp"`
	Targets    Targets     `json:"targets"`
	DeviceRows []DeviceRow `json:"devices"`

	in *Inputs // what was compared, for tests
}

// claim is the truth about one observation.
type claim struct {
	dev   *lab.TruthDevice
	item  *lab.TruthItem
	tp    bool
	why   string
	above bool // claims more pieces than held
}

type pairKey struct {
	dev     string
	torrent int
}

// Evaluate compares the pipeline's records with the truth.
func Evaluate(in Inputs) *Report {
	network := in.Network
	if network == "" {
		network = NetworkBitTorrent
	}
	rep := &Report{Network: network, Devices: map[string]int{}, FalseBy: map[string]int{}, FalseByKind: map[string]int{}, FalseDetail: map[string]int{},
		Forged: in.Truth.Forged, ISP: ISPRow{WrongBy: map[string]int{}}}
	for _, d := range in.Truth.Devices {
		rep.Devices[d.Kind]++
	}
	levels := []observe.Level{observe.Announced, observe.Acknowledged, observe.Partial, observe.Complete, observe.Verified}
	recallBy, methods := methodRecall(in.Network)
	byLevel := map[observe.Level]*Row{}
	byMethod := map[string]*Row{}
	for _, l := range levels {
		byLevel[l] = &Row{Name: l.String()}
	}
	for _, m := range methods {
		byMethod[m] = &Row{Name: m}
	}
	// Pairs detected: by level reached (correctly), by method.
	detectedAt := map[pairKey]observe.Level{}
	detectedBy := map[string]map[pairKey]bool{}
	devRows := map[pairKey]*DeviceRow{}
	for i := range in.Truth.Devices {
		d := &in.Truth.Devices[i]
		for _, it := range d.Items {
			if !it.Watched {
				continue
			}
			devRows[pairKey{d.Name, it.Torrent}] = &DeviceRow{Device: d.Name, Kind: d.Kind, Torrent: it.Torrent,
				Shown: it.Shown.String(), ShownPieces: it.ShownPieces, HeldPieces: it.HeldPieces, Pieces: it.Pieces, MaxPieces: -1}
		}
	}
	for i := range in.Observations {
		o := &in.Observations[i]
		c := judge(&in, o)
		if c.dev != nil {
			k := pairKey{c.dev.Name, -1}
			if c.item != nil {
				k.torrent = c.item.Torrent
			}
			dr := devRows[k]
			if dr == nil {
				dr = &DeviceRow{Device: c.dev.Name, Kind: c.dev.Kind, Torrent: -1, Shown: "none", MaxPieces: -1}
				devRows[k] = dr
			}
			dr.Observations++
			if !c.tp {
				dr.False++
			}
			if lv := o.Possession.Level; dr.MaxRecorded == "" || levelOf(dr.MaxRecorded) < lv {
				dr.MaxRecorded = lv.String()
			}
			dr.MaxPieces = max(dr.MaxPieces, o.Possession.PiecesHave)
		}
		lr := byLevel[o.Possession.Level]
		if lr == nil {
			lr = &Row{Name: o.Possession.Level.String()}
			byLevel[o.Possession.Level] = lr
			levels = append(levels, o.Possession.Level)
		}
		mr := byMethod[o.Method]
		if mr == nil {
			mr = &Row{Name: o.Method}
			byMethod[o.Method] = mr
			methods = append(methods, o.Method)
		}
		for _, r := range []*Row{lr, mr} {
			r.Observations++
			if c.tp {
				r.TruePos++
			} else {
				r.FalsePos++
			}
			if c.above {
				r.AboveHeld++
			}
		}
		if !c.tp {
			rep.FalseBy[c.why]++
			kind := ""
			if c.dev != nil {
				kind = c.dev.Kind
			}
			rep.FalseByKind[kind]++
			if kind == "" {
				kind = "(none)"
			}
			rep.FalseDetail[o.Possession.Level.String()+" "+c.why+" "+kind]++
			continue
		}
		k := pairKey{c.dev.Name, c.item.Torrent}
		if o.Possession.Level > detectedAt[k] {
			detectedAt[k] = o.Possession.Level
		}
		if detectedBy[o.Method] == nil {
			detectedBy[o.Method] = map[pairKey]bool{}
		}
		detectedBy[o.Method][k] = true
	}
	// Recall: of the (device, watched torrent) pairs the lab made
	// detectable.
	for _, d := range in.Truth.Devices {
		for _, it := range d.Items {
			if !it.Watched {
				continue
			}
			k := pairKey{d.Name, it.Torrent}
			for _, l := range levels {
				if l > observe.Complete || l > it.Shown || l == observe.LevelUnknown {
					continue
				}
				byLevel[l].Detectable++
				if detectedAt[k] >= l {
					byLevel[l].Detected++
				}
			}
			for m, detectable := range recallBy {
				if detectable == nil || !detectable(&it) {
					continue
				}
				byMethod[m].Detectable++
				if detectedBy[m][k] {
					byMethod[m].Detected++
				}
			}
		}
	}
	byLevel[observe.Verified].Detectable = -1 // the harness runs without --verify
	for m, detectable := range recallBy {
		if detectable == nil {
			byMethod[m].Detectable = -1
		}
	}
	finish := func(r *Row) Row {
		r.FPRate = ratio(r.FalsePos, r.Observations)
		if r.Detectable < 0 {
			r.Recall, r.Detected = -1, 0
		} else {
			r.Recall = ratio(r.Detected, r.Detectable)
		}
		return *r
	}
	for _, l := range levels {
		rep.Levels = append(rep.Levels, finish(byLevel[l]))
	}
	for _, m := range methods {
		rep.Methods = append(rep.Methods, finish(byMethod[m]))
	}
	for _, dr := range devRows {
		rep.DeviceRows = append(rep.DeviceRows, *dr)
	}
	sort.Slice(rep.DeviceRows, func(i, j int) bool {
		a, b := rep.DeviceRows[i], rep.DeviceRows[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Device != b.Device {
			return a.Device < b.Device
		}
		return a.Torrent < b.Torrent
	})
	evalTargets(&in, rep)
	rep.in = &in
	return rep
}

// methodRecall returns, for the network, the methods reported in the
// order of the table, and for each the (device, item) pairs its recall
// counts: those the lab made detectable by that method (nil: not
// measured).
//
// BitTorrent: dht_get_peers, the device is listed in the lab's DHT for the
// torrent (InDHT); tracker, it announces it to the lab tracker
// (OnTracker); peer_probe, it accepts a handshake for it; dht_announce and
// pex are not measured (the lab does not log every announce and PEX
// message). eD2K: ed2k_server_sources, the client offered the file to the
// lab server (OnTracker, see ed2kTruth); kad_sources, a lab Kad node
// confirmed its publication of the file as a source (InDHT); peer_probe,
// its answers name the file.
func methodRecall(network string) (map[string]func(*lab.TruthItem) bool, []string) {
	probe := func(it *lab.TruthItem) bool { return it.Shown >= observe.Acknowledged }
	dht := func(it *lab.TruthItem) bool { return it.InDHT }
	listed := func(it *lab.TruthItem) bool { return it.OnTracker }
	if network == NetworkED2K {
		return map[string]func(*lab.TruthItem) bool{
				observe.MethodED2KServerSources: listed, observe.MethodKadSources: dht, observe.MethodPeerProbe: probe,
			},
			[]string{observe.MethodED2KServerSources, observe.MethodKadSources, observe.MethodPeerProbe}
	}
	return map[string]func(*lab.TruthItem) bool{
			observe.MethodDHTGetPeers: dht, observe.MethodDHTAnnounce: nil, observe.MethodTracker: listed,
			observe.MethodPEX: nil, observe.MethodPeerProbe: probe,
		},
		[]string{observe.MethodDHTGetPeers, observe.MethodDHTAnnounce, observe.MethodTracker, observe.MethodPEX, observe.MethodPeerProbe}
}

// linkRules are the link rules a network's report always lists, made or
// not.
func linkRules(network string) []string {
	if network == NetworkED2K {
		return []string{analysis.RuleUserHash, analysis.RuleListenPort}
	}
	return []string{analysis.RuleNodeID, analysis.RulePeerID, analysis.RuleListenPort, analysis.RuleAnnounceListen}
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func (in *Inputs) isSensor(ip netip.Addr) bool { return slices.Contains(in.Sensor, ip.Unmap()) }

// thirdParty reports whether the observation is a claim made by someone
// other than the endpoint: a DHT node's values, a tracker's list, PEX, an
// eD2K server's or a Kad node's source list. An incoming get_peers query
// (transport udp) is the endpoint itself asking.
func thirdParty(o *observe.Observation) bool {
	switch o.Method {
	case observe.MethodTracker, observe.MethodPEX, observe.MethodED2KServerSources, observe.MethodKadSources:
		return true
	case observe.MethodDHTGetPeers:
		return o.Endpoint.Transport != "udp"
	}
	return false
}

// deviceFor finds the device an observation is about: the one that used
// the IP at the time, or, for a third party's claim, one that left it
// within the stale window and had the item.
func (in *Inputs) deviceFor(o *observe.Observation, hexHash string) (*lab.TruthDevice, *lab.TruthItem) {
	ip := o.Endpoint.IP.Unmap()
	d, _ := in.Truth.DeviceAt(ip, o.Time)
	if d != nil {
		if it, ok := d.Item(hexHash); ok {
			return d, it
		}
	}
	if thirdParty(o) {
		for i := range in.Truth.Devices {
			sd := &in.Truth.Devices[i]
			for _, s := range sd.Stints {
				if s.Addr.Addr() != ip || s.To.IsZero() || s.To.After(o.Time) || o.Time.Sub(s.To) > in.StaleWindow {
					continue
				}
				if it, ok := sd.Item(hexHash); ok {
					return sd, it
				}
			}
		}
	}
	return d, nil
}

// judge decides one observation.
func judge(in *Inputs, o *observe.Observation) claim {
	if in.isSensor(o.Endpoint.IP) {
		return claim{why: WhySensorItself}
	}
	hx := o.Item.Hash.Hex()
	d, it := in.deviceFor(o, hx)
	if d == nil {
		return claim{why: WhyNoDevice}
	}
	if it == nil {
		return claim{dev: d, why: WhyNeverHadItem}
	}
	c := claim{dev: d, item: it, tp: true}
	lv := o.Possession.Level
	held := it.HeldPieces
	switch {
	case lv == observe.Verified:
		if it.Shown < observe.Complete || (held >= 0 && held < it.Pieces) {
			c.tp, c.why = false, WhyVerifiedFalse
		}
	case lv > it.Shown:
		c.tp, c.why = false, WhyLevelAbove
	case lv == observe.Partial && it.ShownPieces >= 0 && o.Possession.PiecesHave > it.ShownPieces:
		c.tp, c.why = false, WhyPiecesAbove
	}
	if held >= 0 {
		switch lv {
		case observe.Partial:
			c.above = o.Possession.PiecesHave > held
		case observe.Complete, observe.Verified:
			c.above = held < it.Pieces
		}
	}
	return c
}

// evalTargets judges links, targets and ISP rows.
func evalTargets(in *Inputs, rep *Report) {
	obs := map[string]*observe.Observation{}
	for i := range in.Observations {
		obs[in.Observations[i].ID] = &in.Observations[i]
	}
	devOf := func(ep string, at time.Time) *lab.TruthDevice {
		ap, err := netip.ParseAddrPort(ep)
		if err != nil || in.isSensor(ap.Addr()) {
			return nil
		}
		d, _ := in.Truth.DeviceAt(ap.Addr().Unmap(), at)
		return d
	}
	rules := map[string]*LinkRow{}
	seenLink := map[int64]bool{}
	devTargets := map[string]map[string]bool{}   // device -> targets
	devEndpoints := map[string]map[string]bool{} // device -> endpoints
	for ti := range in.Targets {
		t := &in.Targets[ti]
		rep.Targets.Targets++
		devs := map[string]int{}
		firstHand := map[string]int{}
		hadFile := false
		sensorOnly := len(t.Timeline) > 0
		for _, e := range t.Timeline {
			if ap, err := netip.ParseAddrPort(e.Endpoint); err != nil || !in.isSensor(ap.Addr()) {
				sensorOnly = false
			}
			d := devOf(e.Endpoint, e.Time)
			if d == nil {
				continue
			}
			devs[d.Name]++
			if o := obs[e.ID]; o != nil && !thirdParty(o) {
				firstHand[d.Name]++
			}
			if _, ok := d.Item(e.Hash); ok {
				hadFile = true
			}
			if devTargets[d.Name] == nil {
				devTargets[d.Name], devEndpoints[d.Name] = map[string]bool{}, map[string]bool{}
			}
			devTargets[d.Name][t.ID] = true
			devEndpoints[d.Name][e.Endpoint] = true
		}
		switch len(devs) {
		case 0:
			rep.Targets.NoDevice++
			if sensorOnly {
				rep.Targets.SensorItself++
			}
		case 1:
			rep.Targets.OneDevice++
		default:
			rep.Targets.Mixed++
			var names []string
			for n := range devs {
				names = append(names, n)
			}
			sort.Strings(names)
			rep.Targets.MixedDevices = append(rep.Targets.MixedDevices, strings.Join(names, " + "))
		}
		if len(devs) > 0 && !hadFile {
			rep.Targets.NeverHad++
		}
		main := top(firstHand)
		if main == "" {
			main = top(devs)
		}
		for _, l := range t.Links {
			if seenLink[l.ID] {
				continue
			}
			seenLink[l.ID] = true
			lr := rules[l.Rule]
			if lr == nil {
				lr = &LinkRow{Rule: l.Rule}
				rules[l.Rule] = lr
			}
			if l.State != "active" {
				lr.Withdrawn++
				continue
			}
			lr.Made++
			if ends, ok := linkEnds(in, obs, &l); ok {
				lr.Correct++
			} else {
				lr.Wrong++
				rep.WrongLinks = append(rep.WrongLinks, l.Rule+": "+strings.Join(ends, " + "))
			}
		}
		for _, r := range in.Rows[t.ID] {
			rep.ISP.Rows++
			why := judgeRow(in, obs, main, &r)
			if why == "" {
				rep.ISP.Right++
			} else {
				rep.ISP.Wrong++
				rep.ISP.WrongBy[why]++
			}
		}
	}
	for d, eps := range devEndpoints {
		if len(eps) < 2 {
			continue
		}
		rep.Targets.Movers++
		if len(devTargets[d]) == 1 {
			rep.Targets.Joined++
		}
	}
	for _, lr := range rules {
		lr.FPRate = ratio(lr.Wrong, lr.Made)
		rep.Links = append(rep.Links, *lr)
	}
	for _, rule := range linkRules(in.Network) {
		if rules[rule] == nil {
			rep.Links = append(rep.Links, LinkRow{Rule: rule})
		}
	}
	sort.Slice(rep.Links, func(i, j int) bool { return rep.Links[i].Rule < rep.Links[j].Rule })
	sort.Strings(rep.WrongLinks)
	sort.Strings(rep.Targets.MixedDevices)
	rep.ISP.FPRate = ratio(rep.ISP.Wrong, rep.ISP.Rows)
}

// linkEnds names the device of each observation behind a link ("(none)"
// for no device or the sensor) and reports whether they are one device.
func linkEnds(in *Inputs, obs map[string]*observe.Observation, l *analysis.Link) ([]string, bool) {
	var ends []string
	one := len(l.Obs) >= 2
	for _, id := range l.Obs {
		o := obs[id]
		name := "(none)"
		if o != nil && !in.isSensor(o.Endpoint.IP) {
			if d, _ := in.Truth.DeviceAt(o.Endpoint.IP.Unmap(), o.Time); d != nil {
				name = d.Name
			}
		}
		if name == "(none)" || (len(ends) > 0 && ends[0] != name) {
			one = false
		}
		ends = append(ends, name)
	}
	return ends, one
}

// judgeRow returns why an ISP row is wrong, "" if it is a first-hand
// contact of the target's device at that IP, port and time.
func judgeRow(in *Inputs, obs map[string]*observe.Observation, main string, r *isp.Row) string {
	if o := obs[r.ObservationID]; o == nil || thirdParty(o) {
		return WhyThirdParty
	}
	if in.isSensor(r.IP) {
		return WhySensorItself
	}
	d, s := in.Truth.DeviceAt(r.IP.Unmap(), r.Time)
	switch {
	case d == nil:
		return WhyUnknownDevice
	case d.Name != main:
		return WhyOtherDevice
	case s.Addr.Port() != r.Port:
		return WhyWrongPort
	}
	return ""
}

func top(m map[string]int) string {
	best, n := "", 0
	for k, v := range m {
		if v > n || (v == n && k < best) {
			best, n = k, v
		}
	}
	return best
}

func levelOf(s string) observe.Level {
	l, _ := observe.ParseLevel(s)
	return l
}
