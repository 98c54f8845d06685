package rowcodec

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// ErrPurgedSighting is the error of a purge record found through a
// sighting on a target's timeline that is not that sighting's
// observation.
var ErrPurgedSighting = errors.New("a purge record that is not its sighting's")

// PurgedSighting refuses the purge record of observation id (seq, time
// ns, address ip and port: nil in the records written before they were
// kept) as a target's unless it is the observation of the sighting it was
// found by, seq alone tying the two (time seen, at the endpoint epIP and
// epPort). Addresses compare without a zone and IPv4-mapped as IPv4, as
// the timeline's reads compare them. The error names the sighting and
// the record.
func PurgedSighting(id string, seq, ns int64, ip *string, port *int64, seen int64, epIP string, epPort int64) error {
	addr, p := "no recorded address", "no recorded port"
	if ip != nil {
		addr = *ip
	}
	if port != nil {
		p = "port " + strconv.FormatInt(*port, 10)
	}
	bad := ns != seen || (port != nil && *port != epPort)
	if ip != nil {
		a, err := netip.ParseAddr(*ip)
		e, eerr := netip.ParseAddr(epIP)
		bad = bad || err != nil || eerr != nil || a.Unmap().WithZone("") != e.Unmap().WithZone("")
	}
	if !bad {
		return nil
	}
	return fmt.Errorf("the sighting of seq %d at %s, endpoint %s port %d, has the purge record of observation %s of %s %s at %s: %w",
		seq, time.Unix(0, seen).UTC().Format(time.RFC3339Nano), epIP, epPort, id, addr, p, time.Unix(0, ns).UTC().Format(time.RFC3339Nano), ErrPurgedSighting)
}

// ErrPurgedLive is the error of a purge record that its observation's
// row, still stored, contradicts.
var ErrPurgedLive = errors.New("a purge record that its observation's stored row contradicts")

// PurgedLive refuses the purge record of observation id (what it
// removed, seq and time ns) whose row is still stored (its seq rowSeq,
// time rowNS, and transcript: whether it still holds one). A purge of the
// row would have removed it, one of its transcript the transcript, in the
// transaction that wrote the record; and either records the row's own
// seq and time. Such a record, INSERTed by hand, would otherwise take the
// observation out of a bundle's proven ones (its row read as no longer
// hashing to its leaf) or mark it purged in an ISP request.
func PurgedLive(id, what string, seq, ns, rowSeq, rowNS int64, transcript bool) error {
	var why string
	switch {
	case what != "transcripts":
		why = "records the purge of the row, which is still stored"
	case transcript:
		why = "records the purge of its transcript, which the row still holds"
	case seq != rowSeq || ns != rowNS:
		why = fmt.Sprintf("is of seq %d at %s, the row of seq %d at %s", seq, time.Unix(0, ns).UTC().Format(time.RFC3339Nano),
			rowSeq, time.Unix(0, rowNS).UTC().Format(time.RFC3339Nano))
	default:
		return nil
	}
	return fmt.Errorf("the purge record of observation %s %s: %w", id, why, ErrPurgedLive)
}
