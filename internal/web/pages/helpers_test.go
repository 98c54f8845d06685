package pages

import (
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"
)

func newTestHTTP(t testing.TB, h http.Handler) string {
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

func newMultipart(w io.Writer) *multipart.Writer { return multipart.NewWriter(w) }
