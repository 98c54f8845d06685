package pages

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
	"github.com/vigil-oss/vigil/internal/webviews"
)

// lists answers Lists from the store's watch-lists.
type storeLists struct {
	st Store
}

// Lists implements Lists.
func (l storeLists) Lists(ctx context.Context, u *User) ([]ListInfo, error) {
	ls, err := l.st.Lists(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ListInfo, 0, len(ls))
	for _, x := range ls {
		out = append(out, ListInfo{Name: x.Name, Source: x.Source, Version: x.Version, Format: string(x.Format),
			Negative: x.Negative, Imported: x.Imported, Entries: x.Entries, Disabled: x.Disabled, SHA256: x.SHA256})
	}
	return out, nil
}

// Versions implements Lists.
func (l storeLists) Versions(ctx context.Context, u *User, name string) ([]ListVersion, error) {
	vs, err := l.st.ListVersions(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]ListVersion, 0, len(vs))
	for _, v := range vs {
		label := v.Label
		if label == strconv.Itoa(v.Number) {
			label = ""
		}
		out = append(out, ListVersion{Version: v.Number, Label: label, Imported: v.Imported, By: v.By, SHA256: v.SHA256,
			Entries: v.Entries, Added: v.Added, Removed: v.Removed, Changed: v.Changed})
	}
	return out, nil
}

// Diff implements Lists.
func (l storeLists) Diff(ctx context.Context, u *User, name string, from, to int) (ListDiff, error) {
	if from >= to {
		return ListDiff{}, fmt.Errorf("list %q: diff %d..%d: %w", name, from, to, ErrNotFound)
	}
	d, err := l.st.DiffListVersions(ctx, name, from, to, 200)
	if errors.Is(err, store.ErrNotFound) {
		return ListDiff{}, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	if err != nil {
		return ListDiff{}, err
	}
	conv := func(cs []webviews.ListChange) []DiffEntry {
		out := make([]DiffEntry, 0, len(cs))
		for _, c := range cs {
			out = append(out, DiffEntry{Hash: c.Hash.Kind().String() + ":" + c.Hash.Hex(), Category: c.Category, Was: c.Was})
		}
		return out
	}
	return ListDiff{From: d.From, To: d.To, Added: conv(d.Added), Removed: conv(d.Removed), Changed: conv(d.Changed),
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

// Import implements Lists: the file is parsed (format detected, all
// or nothing, as 'vigil watchlist import' does) and stored as the list's
// new version, imported by the viewer.
func (l storeLists) Import(ctx context.Context, u *User, up ListUpload, progress func(done, total int64)) (ImportResult, error) {
	if u == nil || !u.CanManageLists() {
		return ImportResult{}, ErrDenied
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
			e := &ImportRejectedError{File: up.Filename, Total: len(res.Rejected)}
			for _, r := range res.Rejected[:min(len(res.Rejected), MaxRejectedShown)] {
				e.Lines = append(e.Lines, RejectedLine{Line: r.Line, Reason: r.Reason})
			}
			return ImportResult{}, e
		}
		return ImportResult{}, fmt.Errorf("%s: %w", up.Filename, err)
	}
	rep, err := l.st.ImportList(ctx, store.ListImport{Name: up.Name, Source: up.Source, Format: res.Format,
		SHA256: hex.EncodeToString(sum.Sum(nil)), By: u.Name, Entries: res.Entries})
	if err != nil {
		return ImportResult{}, err
	}
	return ImportResult{List: rep.List, Version: rep.Version, Unchanged: rep.Unchanged, Added: rep.Added, Removed: rep.Removed,
		Changed: rep.Changed}, nil
}
