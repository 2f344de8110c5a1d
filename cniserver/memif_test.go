package cniserver

import (
	"errors"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/ipam"
	memifport "github.com/xvs-project/xvs/port/memif"
)

func TestParseMemif(t *testing.T) {
	tests := []struct {
		v     string
		n     int
		field string // "": valid; else named in the error
	}{
		{"", 0, ""}, {"false", 0, ""}, {"[]", 0, ""}, {"true", 1, ""}, {`"true"`, 1, ""},
		{`[{}]`, 1, ""},
		{`[{"queues": 2, "ringSize": 1024, "mode": "ethernet", "polling": true, "mac": "02:fe:00:00:00:01"}, {}]`, 2, ""},
		{"yes", 0, "yes"},
		{"[", 0, "not a JSON list"},
		{`[{"queues": 0}]`, 0, "[0].queues 0"},
		{`[{}, {"queues": 65}]`, 0, "[1].queues 65"},
		{`[{"ringSize": 1000}]`, 0, "[0].ringSize 1000"},
		{`[{"mac": "01:00:5e:00:00:01"}]`, 0, "[0].mac"},
		{`[{"mode": "ip"}]`, 0, "[0].mode"},
		{`[{"bufferSize": 2048}]`, 0, "[0].bufferSize 2048"},
		{`[{"rings": 2}]`, 0, "rings"},
		{`[{},{},{},{},{},{},{},{},{},{},{}]`, 0, "at most 10"},
	}
	for _, tc := range tests {
		ms, err := ParseMemif("annotation "+MemifAnnotation, tc.v)
		if tc.field == "" {
			if err != nil || len(ms) != tc.n {
				t.Errorf("%s: %d ports, %v; want %d", tc.v, len(ms), err, tc.n)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), MemifAnnotation) {
			t.Errorf("%s: error %v, want one naming %s and %q", tc.v, err, MemifAnnotation, tc.field)
		}
	}
	ms, _ := ParseMemif("x", `[{"queues": 2, "ringSize": 512, "mac": "02:fe:00:00:00:01"}]`)
	if m := ms[0]; m.Queues != 2 || m.RingSize != 512 || m.MAC != [6]byte{2, 0xfe, 0, 0, 0, 1} {
		t.Errorf("parsed %+v", m)
	}
}

// TestMemifRequest: the annotation wins over the network config; each
// source's refusal has its code.
func TestMemifRequest(t *testing.T) {
	ms, err := memifRequest(map[string]string{MemifAnnotation: "false"}, "true")
	if err != nil || len(ms) != 0 {
		t.Errorf("annotation false over config true: %v %v", ms, err)
	}
	ms, err = memifRequest(nil, `[{}, {}]`)
	if err != nil || len(ms) != 2 {
		t.Errorf("config list: %v %v", ms, err)
	}
	var e *Error
	if _, err := memifRequest(map[string]string{MemifAnnotation: "2"}, ""); !errors.As(err, &e) || e.Code != CodeBadAnnotation {
		t.Errorf("bad annotation: %v", err)
	}
	if _, err := memifRequest(nil, `{"queues": 1}`); !errors.As(err, &e) || e.Code != CodeInvalidConfig || !strings.Contains(e.Error(), "network config: memif") {
		t.Errorf("bad config: %v", err)
	}
}

func TestMemifNames(t *testing.T) {
	h := ipam.Handle{ContainerID: "c1", IfName: "eth0"}
	mh := MemifHandle(h, 3)
	if mh.IfName != "eth0@m3" || mh.Validate() != nil || !isMemifHandle(mh) || isMemifHandle(h) {
		t.Errorf("memif handle %v", mh)
	}
	if long := MemifHandle(ipam.Handle{ContainerID: "c", IfName: "averylongname15"}, 9); long.Validate() != nil {
		t.Errorf("long ifname: %v", long.Validate())
	}
	if n := memifport.PodPortName(HostIfName(h), 9); !isMemifPortName(n) {
		t.Errorf("memif port name not recognised")
	}
	if isMemifPortName(HostIfName(h)) || isMemifPortName("eth0-m0") {
		t.Errorf("non-memif name recognised")
	}
}
