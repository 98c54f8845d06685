package krpc

import (
	"bytes"
	"fmt"
	"slices"
)

// msgDiff describes the first difference between two messages, or "" if
// they are equal. Nil and empty slices are equal: the wire does not tell
// them apart.
func msgDiff(got, want *Msg) string {
	switch {
	case !bytes.Equal(got.T, want.T):
		return fmt.Sprintf("T = %q, want %q", got.T, want.T)
	case got.Kind != want.Kind:
		return fmt.Sprintf("Kind = %v, want %v", got.Kind, want.Kind)
	case got.Method != want.Method:
		return fmt.Sprintf("Method = %v, want %v", got.Method, want.Method)
	case !bytes.Equal(got.MethodName, want.MethodName):
		return fmt.Sprintf("MethodName = %q, want %q", got.MethodName, want.MethodName)
	case !bytes.Equal(got.V, want.V):
		return fmt.Sprintf("V = %q, want %q", got.V, want.V)
	case got.IP != want.IP:
		return fmt.Sprintf("IP = %v, want %v", got.IP, want.IP)
	case got.RO != want.RO:
		return fmt.Sprintf("RO = %v, want %v", got.RO, want.RO)
	}
	ga, wa := got.A, want.A
	switch {
	case ga.ID != wa.ID || ga.Target != wa.Target || ga.InfoHash != wa.InfoHash:
		return fmt.Sprintf("A ids = %x/%x/%x, want %x/%x/%x", ga.ID, ga.Target, ga.InfoHash, wa.ID, wa.Target, wa.InfoHash)
	case !bytes.Equal(ga.Token, wa.Token) || !bytes.Equal(ga.Name, wa.Name):
		return fmt.Sprintf("A token/name = %q/%q, want %q/%q", ga.Token, ga.Name, wa.Token, wa.Name)
	case ga.Port != wa.Port || ga.ImpliedPort != wa.ImpliedPort || ga.Seed != wa.Seed || ga.Want != wa.Want:
		return fmt.Sprintf("A = %+v, want %+v", ga, wa)
	}
	gr, wr := got.R, want.R
	switch {
	case gr.ID != wr.ID:
		return fmt.Sprintf("R.ID = %x, want %x", gr.ID, wr.ID)
	case !slices.Equal(gr.Nodes, wr.Nodes):
		return fmt.Sprintf("R.Nodes = %v, want %v", gr.Nodes, wr.Nodes)
	case !slices.Equal(gr.Nodes6, wr.Nodes6):
		return fmt.Sprintf("R.Nodes6 = %v, want %v", gr.Nodes6, wr.Nodes6)
	case !slices.Equal(gr.Values, wr.Values):
		return fmt.Sprintf("R.Values = %v, want %v", gr.Values, wr.Values)
	case !slices.Equal(gr.Samples, wr.Samples):
		return fmt.Sprintf("R.Samples = %x, want %x", gr.Samples, wr.Samples)
	case !bytes.Equal(gr.Token, wr.Token):
		return fmt.Sprintf("R.Token = %q, want %q", gr.Token, wr.Token)
	case gr.Num != wr.Num || gr.HasNum != wr.HasNum || gr.Interval != wr.Interval || gr.HasInterval != wr.HasInterval:
		return fmt.Sprintf("R num/interval = %d,%v/%d,%v, want %d,%v/%d,%v", gr.Num, gr.HasNum, gr.Interval, gr.HasInterval, wr.Num, wr.HasNum, wr.Interval, wr.HasInterval)
	case got.E.Code != want.E.Code || !bytes.Equal(got.E.Msg, want.E.Msg):
		return fmt.Sprintf("E = %d %q, want %d %q", got.E.Code, got.E.Msg, want.E.Code, want.E.Msg)
	}
	return ""
}
