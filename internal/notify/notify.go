// Package notify sends an alert's message out of Vigil: by e-mail (SMTP)
// and to webhooks signed with HMAC-SHA256. It holds no state: the alerts
// package keeps the queue, the retries and the log of each delivery.
package notify

import (
	"context"
	"errors"
	"time"
)

// Message is one alert's delivery, already reduced to what its recipient
// may read.
type Message struct {
	ID      string    // the alert delivery's id: receivers deduplicate on it
	Rule    string    // the rule's id
	Agency  string    // the agency the alert is for
	At      time.Time // when the event happened (UTC)
	Subject string    // one line, no line breaks
	Text    string    // plain-text body
	JSON    []byte    // the webhook body (application/json)
}

// Sender delivers a message once. An error wrapping ErrPermanent will not
// succeed on retry (refused address, 4xx answer); any other error may.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// ErrPermanent marks a delivery that retrying cannot mend.
var ErrPermanent = errors.New("notify: permanent failure")
