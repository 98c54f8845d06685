// Package analysis turns stored observations into devices, targets and
// scores, holds suspicious hashes in quarantine, and keeps associated files
// as leads for review.
//
//   - An endpoint is an IP and port over a bounded time: silent for longer
//     than Config.EndpointWindow, the same IP:port is a new endpoint. A
//     non-public address named by a third party makes no endpoint of its
//     own; it joins one only where the endpoint itself talked to the sensor.
//     A DHT announce is its own endpoint (its UDP source); the port it
//     declares joins it to the endpoint probed there only by a weak
//     announce_listen_port link (carrier-grade NAT: the port may be another
//     subscriber's).
//   - A device is a set of endpoints joined by links. Only first-hand
//     identifiers link (observe.Observation.FirstHand; DHT node ids only when
//     valid under BEP 42 and not learnt by pinging a declared port), each rule within a time window, and a session
//     identity seen at two addresses at once is withdrawn. Every link names
//     the identifier or the overlap that made it, with a confidence and the
//     observations behind it; an analyst can reject a link, and that
//     decision is kept and stops the same evidence from joining them again.
//     An IP address alone never makes a device. Identifiers can be forged.
//     IPv6 endpoints of one subscriber prefix (IPv6Config: the length an
//     ISP delegates to a subscriber, /64 by default), one AS and one port
//     that is no client default, seen one after the other within the
//     endpoint window, are joined by a subscriber_prefix link: a machine
//     draws a new temporary address in its /64 every day. Two machines of
//     one prefix and port seen at once withdraw it; VPN, hosting, Teredo,
//     6to4, NAT64 and link-local addresses never make one.
//   - A target is a device or a lone endpoint. Its score is a documented sum
//     of named parts (docs/scoring.md), resting on first-hand observations;
//     what others said of it counts only in a capped second_hand part. The
//     possession level of every file travels with it, and an announce
//     counts far less than a complete copy.
//     A link never raises a level: each endpoint keeps its own, and a linked
//     endpoint's files count at its link confidence.
//   - A quarantined hash (one that suddenly matches far more peers than its
//     history) stops scoring until an analyst releases or disables it.
//   - An associated file (another file of a matched torrent) is a lead for a
//     human, never a match: it makes no observation and no score of its own.
//
// The Engine is fed by ingest after each commit (Add) and can catch up from
// the store's observations after a persisted watermark (CatchUp). Its
// in-memory state is rebuilt from the store at start; analyst decisions are
// kept in the store and survive every rebuild.
//
// Several processes may run an Engine over one store. Each folds every
// stored observation in seq order, so views at one watermark are one view;
// a save is refused (ErrStale) when another process saved since this view
// last matched the store (Changes.Version, checked in the save's
// transaction), and the Engine then catches up to the store's watermark,
// applies the decisions stored since and saves again. A save therefore
// never writes a view older than the store's (docs/architecture.md).
// Leads reach only the Engine that recorded them (and those started
// later).
//
// This package must never widen what a reader may see: every query takes a
// Scope, applied in the store's SQL, and a target outside it is
// indistinguishable from one that does not exist.
package analysis
