package xdpprog

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestObjectsMatchSources checks that the committed objects are the ones
// go generate builds from the committed C: every source and object has
// the hash bpf/SHA256SUMS records (written by go generate, with the
// objects), and no source is missing from it. Where the clang that built
// them is installed (bpf/clang.version), it rebuilds the objects with
// gen.go's own bpf2go lines into a temporary directory and compares them
// byte for byte: a SHA256SUMS edited by hand does not get past that.
func TestObjectsMatchSources(t *testing.T) {
	sums := readSums(t)
	sources, err := filepath.Glob("bpf/*.[ch]")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(sources, "xdp_bpfel.o", "tc_bpfel.o") {
		want, ok := sums[f]
		if !ok {
			t.Errorf("%s is not in bpf/SHA256SUMS: run go generate ./xdpprog and commit what it writes", f)
			continue
		}
		if got := fileSum(t, f); got != want {
			t.Errorf("%s: sha256 %s, bpf/SHA256SUMS says %s: run go generate ./xdpprog and commit what it writes", f, got, want)
		}
	}
	for f := range sums {
		if !slices.Contains(sources, f) && !strings.HasSuffix(f, ".o") {
			t.Errorf("bpf/SHA256SUMS lists %s, which is not there", f)
		}
	}

	if testing.Short() {
		return
	}
	version, err := exec.Command("clang", "--version").Output()
	if err != nil {
		t.Logf("no clang (%v): the objects are checked against the recorded hashes only", err)
		return
	}
	recorded, err := os.ReadFile("bpf/clang.version")
	if err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(string(version), "\n"); first != strings.TrimSpace(string(recorded)) {
		t.Logf("clang is %q, the objects were built with %q: not rebuilt", first, strings.TrimSpace(string(recorded)))
		return
	}
	dir := t.TempDir()
	bpf2go := filepath.Join(dir, "bpf2go")
	if out, err := exec.Command("go", "build", "-o", bpf2go, "github.com/cilium/ebpf/cmd/bpf2go").CombinedOutput(); err != nil {
		t.Fatalf("build bpf2go: %v\n%s", err, out)
	}
	for _, args := range bpf2goLines(t) {
		cmd := exec.Command(bpf2go, append([]string{"-output-dir", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GOPACKAGE=xdpprog")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("bpf2go %v: %v\n%s", args, err, out)
		}
	}
	for _, o := range []string{"xdp_bpfel.o", "tc_bpfel.o"} {
		got, err := os.ReadFile(filepath.Join(dir, o))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(o)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what bpf/ builds: run go generate ./xdpprog and commit what it writes", o)
		}
	}
}

// readSums reads bpf/SHA256SUMS, as sha256sum writes it: hash, two
// spaces, file name.
func readSums(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("bpf/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("bpf/SHA256SUMS: malformed line %q", sc.Text())
		}
		sums[name] = sum
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sums
}

func fileSum(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// bpf2goLines returns the arguments of gen.go's bpf2go lines.
func bpf2goLines(t *testing.T) [][]string {
	t.Helper()
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "//go:generate go run github.com/cilium/ebpf/cmd/bpf2go "
	var lines [][]string
	for _, l := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			lines = append(lines, strings.Fields(rest))
		}
	}
	if len(lines) != 2 {
		t.Fatalf("gen.go has %d bpf2go lines, want 2 (xdp and tc)", len(lines))
	}
	return lines
}
