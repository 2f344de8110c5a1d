package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/xvs-project/xvs/api"
)

// kubeStatus mirrors kube/agent.Status's JSON (xvsctl stays free of
// client-go).
type kubeStatus struct {
	Node        string         `json:"node"`
	Connected   bool           `json:"connected"`
	Synced      bool           `json:"synced"`
	LastError   string         `json:"lastError"`
	LastResync  time.Time      `json:"lastResync"`
	Resyncs     uint64         `json:"resyncs"`
	WatchErrors uint64         `json:"watchErrors"`
	Objects     map[string]int `json:"objects"`
	ASNumber    uint32         `json:"asNumber"`
	MeshPeers   int            `json:"meshPeers"`
	Peers       int            `json:"peers"`
	VXLANRoutes int            `json:"vxlanRoutes"`
	Refused     []string       `json:"refused"`
}

// parseKube: kube status.
func parseKube(args []string) (*Command, error) {
	if len(args) == 0 || args[0] != "status" {
		return nil, usagef("kube: only \"kube status\"")
	}
	return &Command{Op: OpKubeStatus}, noMore(args[1:], "kube status")
}

func runKube(ctx context.Context, c *api.Client, g Globals, w io.Writer, now func() time.Time) error {
	js, err := c.KubeStatus(ctx)
	if errors.Is(err, api.ErrNoKube) {
		io.WriteString(w, "xvsd is running standalone (no kubernetes: section in its config).\n")
		return nil
	}
	if err != nil {
		return err
	}
	var st kubeStatus
	if err := json.Unmarshal(js, &st); err != nil {
		return fmt.Errorf("kube status: %w", err)
	}
	if g.Output == "json" {
		return writeIndented(w, st)
	}
	return formatKube(w, st, now())
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func formatKube(w io.Writer, st kubeStatus, now time.Time) error {
	resync := "never"
	if !st.LastResync.IsZero() {
		resync = fmt.Sprintf("%s (%s ago)", st.LastResync.UTC().Format(time.RFC3339), now.Sub(st.LastResync).Round(time.Second))
	}
	fmt.Fprintf(w, "Kubernetes node agent, node %s\n", st.Node)
	fmt.Fprintf(w, "  connected:    %s\n  synced:       %s\n  last resync:  %s\n  resyncs:      %d\n  watch errors: %d\n",
		yesNo(st.Connected), yesNo(st.Synced), resync, st.Resyncs, st.WatchErrors)
	if st.LastError != "" {
		fmt.Fprintf(w, "  last error:   %s\n", st.LastError)
	}
	fmt.Fprintf(w, "  BGP:          AS %d, %d mesh peers, %d explicit peers\n  VXLAN routes: %d\n", st.ASNumber, st.MeshPeers, st.Peers, st.VXLANRoutes)
	keys := make([]string, 0, len(st.Objects))
	for k := range st.Objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	io.WriteString(w, "  objects seen:")
	for _, k := range keys {
		fmt.Fprintf(w, " %s=%d", k, st.Objects[k])
	}
	io.WriteString(w, "\n")
	for _, r := range st.Refused {
		fmt.Fprintf(w, "  refused:      %s\n", r)
	}
	return nil
}
