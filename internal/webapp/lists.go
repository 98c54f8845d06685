package webapp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/watchlist"
	"github.com/vigil-oss/vigil/internal/web"
	"github.com/vigil-oss/vigil/internal/webviews"
)

// lists answers web.Lists from the store's watch-lists.
type lists struct {
	st Store
}

// Lists implements web.Lists.
func (l lists) Lists(ctx context.Context, u *web.User) ([]web.ListInfo, error) {
	ls, err := l.st.Lists(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]web.ListInfo, 0, len(ls))
	for _, x := range ls {
		out = append(out, web.ListInfo{Name: x.Name, Source: x.Source, Version: x.Version, Format: string(x.Format),
			Negative: x.Negative, Imported: x.Imported, Entries: x.Entries, Disabled: x.Disabled, SHA256: x.SHA256})
	}
	return out, nil
}

// Versions implements web.Lists.
func (l lists) Versions(ctx context.Context, u *web.User, name string) ([]web.ListVersion, error) {
	vs, err := l.st.ListVersions(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %v", web.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]web.ListVersion, 0, len(vs))
	for _, v := range vs {
		label := v.Label
		if label == strconv.Itoa(v.Number) {
			label = ""
		}
		out = append(out, web.ListVersion{Version: v.Number, Label: label, Imported: v.Imported, By: v.By, SHA256: v.SHA256,
			Entries: v.Entries, Added: v.Added, Removed: v.Removed, Changed: v.Changed})
	}
	return out, nil
}

// Diff implements web.Lists.
func (l lists) Diff(ctx context.Context, u *web.User, name string, from, to int) (web.ListDiff, error) {
	if from >= to {
		return web.ListDiff{}, fmt.Errorf("list %q: diff %d..%d: %w", name, from, to, web.ErrNotFound)
	}
	d, err := l.st.DiffListVersions(ctx, name, from, to, 200)
	if errors.Is(err, store.ErrNotFound) {
		return web.ListDiff{}, fmt.Errorf("%w: %v", web.ErrNotFound, err)
	}
	if err != nil {
		return web.ListDiff{}, err
	}
	conv := func(cs []webviews.ListChange) []web.DiffEntry {
		out := make([]web.DiffEntry, 0, len(cs))
		for _, c := range cs {
			out = append(out, web.DiffEntry{Hash: c.Hash.Kind().String() + ":" + c.Hash.Hex(), Category: c.Category, Was: c.Was})
		}
		return out
	}
	return web.ListDiff{From: d.From, To: d.To, Added: conv(d.Added), Removed: conv(d.Removed), Changed: conv(d.Changed),
		Truncated: d.Truncated}, nil
}

// progressReader reports how many bytes were read.
type progressReader struct {
	r     io.Reader
	done  int64
	total int64
	fn    func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.fn != nil && n > 0 {
		p.fn(p.done, p.total)
	}
	return n, err
}

// Import implements web.Lists: the file is parsed (format detected, all
// or nothing, as 'vigil watchlist import' does) and stored as the list's
// new version, imported by the viewer.
func (l lists) Import(ctx context.Context, u *web.User, up web.ListUpload, progress func(done, total int64)) (web.ImportResult, error) {
	if u == nil || !u.CanManageLists() {
		return web.ImportResult{}, web.ErrDenied
	}
	sum := sha256.New()
	total := up.Size
	if total <= 0 {
		total = -1
	}
	pr := &progressReader{r: io.TeeReader(up.Body, sum), total: total, fn: progress}
	res, err := watchlist.Parse(pr, watchlist.ParseOptions{File: up.Filename})
	if err != nil {
		if res != nil && len(res.Rejected) > 0 {
			e := &web.ImportRejectedError{File: up.Filename, Total: len(res.Rejected)}
			for _, r := range res.Rejected[:min(len(res.Rejected), web.MaxRejectedShown)] {
				e.Lines = append(e.Lines, web.RejectedLine{Line: r.Line, Reason: r.Reason})
			}
			return web.ImportResult{}, e
		}
		return web.ImportResult{}, fmt.Errorf("%s: %w", up.Filename, err)
	}
	rep, err := l.st.ImportList(ctx, store.ListImport{Name: up.Name, Source: up.Source, Format: res.Format,
		SHA256: hex.EncodeToString(sum.Sum(nil)), By: u.Name, Entries: res.Entries})
	if err != nil {
		return web.ImportResult{}, err
	}
	return web.ImportResult{List: rep.List, Version: rep.Version, Unchanged: rep.Unchanged, Added: rep.Added, Removed: rep.Removed,
		Changed: rep.Changed}, nil
}
