package access

import (
	"errors"
	"net/http"
	"strings"
)

// Recheck authenticates again, as it stands now, the credential r was
// authenticated with by Authenticate (its bearer token or its session
// cookie), and returns its principal. It answers ErrUnauthenticated when
// the credential no longer holds: the session was logged out, expired or
// idled out, the token was revoked or expired, or the user was disabled. A
// long-lived response (the live feed) calls it before each write, so that
// nothing more is delivered after any of these. A session re-check does
// not count as activity: a stream alone does not keep a session from
// idling out.
func (s *Service) Recheck(r *http.Request) (*Principal, error) {
	ctx := r.Context()
	p := PrincipalFrom(ctx)
	if p == nil {
		return nil, ErrUnauthenticated
	}
	switch p.Via {
	case "token":
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return nil, ErrUnauthenticated
		}
		return s.TokenPrincipal(ctx, strings.TrimSpace(tok), p.Remote)
	case "session":
		si, _ := ctx.Value(sessionKey).(*sessionInfo)
		if si == nil {
			return nil, ErrUnauthenticated
		}
		ses, err := s.st.SessionByHash(ctx, hashSecret(si.id))
		if errors.Is(err, ErrNotFound) {
			return nil, ErrUnauthenticated
		}
		if err != nil {
			return nil, err
		}
		now := s.cfg.Now().UTC()
		if !now.Before(ses.Expires) || now.Sub(ses.LastSeen) >= s.cfg.IdleTimeout {
			return nil, ErrUnauthenticated
		}
		u, err := s.st.UserByID(ctx, ses.UserID)
		if errors.Is(err, ErrNotFound) {
			return nil, ErrUnauthenticated
		}
		if err != nil {
			return nil, err
		}
		if u.Disabled {
			return nil, ErrUnauthenticated
		}
		return principalOf(u, "session", p.Remote), nil
	}
	return nil, ErrUnauthenticated
}
