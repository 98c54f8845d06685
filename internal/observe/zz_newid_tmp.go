package observe

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"time"
)

var idMu sync.Mutex
var idLast uint64

// NewID is a temporary UUIDv7 (lead's stand-in until the store helper's lands).
func NewID(t time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	ms := uint64(t.UnixMilli())
	idMu.Lock()
	if ms <= idLast>>12 {
		idLast++
	} else {
		idLast = ms << 12
	}
	v := idLast
	idMu.Unlock()
	binary.BigEndian.PutUint64(b[:8], (v>>12)<<16|0x7000|v&0xfff)
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
