#!/usr/bin/env bash
# bench-ab.sh: the pipeline's per-packet cost, this tree against an older
# commit (by default b718956, the last one before the dataplane
# restructure of issue 12), in instructions per op and, with WALL=1, in
# wall-clock time through benchstat.
#
#   perf/bench-ab.sh                      # instructions, every benchmark
#   perf/bench-ab.sh PipelineIPv4 VXLAN/decap-ipv4
#   FUNCS=1 perf/bench-ab.sh VXLAN/decap-ipv4   # and where they go, per function
#   WALL=1 perf/bench-ab.sh               # and benchstat over COUNT alternating runs
#   BASE=<commit> NEW=<commit> perf/bench-ab.sh   # NEW unset: the working tree
#
# Instructions: each test binary runs a benchmark under cachegrind at
# HI and LO iterations (-test.benchtime Nx); (Ir(HI) - Ir(LO)) / (HI - LO)
# is the cost of one op with the setup, the runtime's start and the
# testing package's calibration cancelled out. RUNS repeats, alternating
# base and new, give the median and the spread (max - min) of each side.
# Load does not change an instruction count, so this is the A/B to trust
# on a shared machine.
#
# Wall clock: COUNT rounds, each running every benchmark once with the
# base binary and once with the new one, under flock $LOCK so that no two
# benchmarks on the machine run at once; benchstat compares the two.
#
# Benchmarks are named by label; the table below maps a label to the
# package and -test.bench pattern on each side, since packages moved in
# the restructure (the benchmarks themselves stayed in vswitch, driving
# the workers that moved to dataplane).
set -euo pipefail

BASE=${BASE:-b718956}
NEW=${NEW:-}
RUNS=${RUNS:-3}
HI=${HI:-2200}
LO=${LO:-200}
WALL=${WALL:-0}
COUNT=${COUNT:-10}
BENCHTIME=${BENCHTIME:-200ms}
FUNCS=${FUNCS:-0}
LOCK=${LOCK:-/tmp/xvs-bench.lock}
BENCHSTAT=${BENCHSTAT:-$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")}

# label | base package | base pattern | new package | new pattern
MAP="
PipelineIPv4|./vswitch|^BenchmarkPipelineIPv4\$|./vswitch|^BenchmarkPipelineIPv4\$
PipelineIPv6|./vswitch|^BenchmarkPipelineIPv6\$|./vswitch|^BenchmarkPipelineIPv6\$
VXLAN/encap-ipv4|./vswitch|^BenchmarkVXLAN\$/^encap-ipv4\$|./vswitch|^BenchmarkVXLAN\$/^encap-ipv4\$
VXLAN/encap-ipv6|./vswitch|^BenchmarkVXLAN\$/^encap-ipv6\$|./vswitch|^BenchmarkVXLAN\$/^encap-ipv6\$
VXLAN/decap-ipv4|./vswitch|^BenchmarkVXLAN\$/^decap-ipv4\$|./vswitch|^BenchmarkVXLAN\$/^decap-ipv4\$
VXLAN/decap-ipv6|./vswitch|^BenchmarkVXLAN\$/^decap-ipv6\$|./vswitch|^BenchmarkVXLAN\$/^decap-ipv6\$
ForwardLarge/whole|./vswitch|^BenchmarkForwardLarge\$/^whole\$|./vswitch|^BenchmarkForwardLarge\$/^whole\$
ForwardLarge/segmented|./vswitch|^BenchmarkForwardLarge\$/^segmented\$|./vswitch|^BenchmarkForwardLarge\$/^segmented\$
RingLoop|./vswitch|^BenchmarkRingLoop\$|./vswitch|^BenchmarkRingLoop\$
"

# Function names that moved, base form -> new form, for FUNCS=1.
FUNCMAP='s/xvs\/vswitch\.(\*worker)/xvs\/dataplane.(*Worker)/'

die() { echo "bench-ab: $*" >&2; exit 1; }

command -v valgrind >/dev/null || die "valgrind not found (apt-get install valgrind)"
root=$(git rev-parse --show-toplevel)
base=$(git -C "$root" rev-parse --verify "$BASE^{commit}") || die "BASE $BASE: not a commit"
work=$(mktemp -d /tmp/xvs-ab.XXXXXX)
trees=()
cleanup() {
	for t in "${trees[@]}"; do git -C "$root" worktree remove --force "$t" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# checkout COMMIT: a worktree of COMMIT under $work, printed.
checkout() {
	local dir=$work/tree-$1
	git -C "$root" worktree add --detach "$dir" "$1" >/dev/null 2>&1 || die "worktree of $1"
	trees+=("$dir")
	echo "$dir"
}

basedir=$(checkout "$base")
if [ -n "$NEW" ]; then
	newsha=$(git -C "$root" rev-parse --verify "$NEW^{commit}") || die "NEW $NEW: not a commit"
	newdir=$(checkout "$newsha")
	newname=$(git -C "$root" rev-parse --short "$newsha")
else
	newdir=$root
	newname="working tree ($(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- . || echo '+changes'))"
fi

labels=("$@")
if [ ${#labels[@]} -eq 0 ]; then
	mapfile -t labels < <(echo "$MAP" | awk -F'|' 'NF == 5 {print $1}')
fi

# field LABEL N: field N of LABEL's row.
field() {
	echo "$MAP" | awk -F'|' -v l="$1" -v n="$2" '$1 == l {print $n; found = 1} END {exit !found}' ||
		die "no benchmark $1 (labels: $(echo "$MAP" | awk -F'|' 'NF == 5 {printf "%s ", $1}'))"
}

# bin SIDE PKG: the test binary of PKG on SIDE (base or new), built once.
bin() {
	local dir=$basedir out
	[ "$1" = new ] && dir=$newdir
	out=$work/$1-$(echo "$2" | tr -c 'A-Za-z0-9\n' _).test
	if [ ! -x "$out" ]; then
		(cd "$dir" && go test -c -o "$out" "$2") >&2 || die "build $2 on the $1 side"
	fi
	echo "$out"
}

# ir BIN PATTERN N OUT: instructions of BIN running PATTERN N times.
# cpu.rdtscp=off: the runtime's lock code reads the clock with RDTSCP
# when a lock is contended (runtime.cputicks), which Valgrind 3.19 does
# not know; the run would die of SIGILL, more often the busier the
# machine. The plain RDTSC path is the same instructions on both sides.
ir() {
	GODEBUG=cpu.rdtscp=off GOGC=off valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$4" \
		"$1" -test.run '^$' -test.bench "$2" -test.benchtime "$3x" -test.cpu 1 >"$4.log" 2>&1 ||
		die "$1 -test.bench $2: $(tail -3 "$4.log")"
	grep -q '^Benchmark' "$4.log" || die "$1 -test.bench $2 ran no benchmark"
	awk '/^summary:/ {print $2}' "$4"
}

# perop SIDE LABEL RUN: instructions per op, keeping the cachegrind files.
perop() {
	local col=3 pkgcol=2 b f
	if [ "$1" = new ]; then col=5 pkgcol=4; fi
	b=$(bin "$1" "$(field "$2" $pkgcol)")
	f=$work/cg.$1.$(echo "$2" | tr / _).$3
	echo $((($(ir "$b" "$(field "$2" $col)" "$HI" "$f.hi") - $(ir "$b" "$(field "$2" $col)" "$LO" "$f.lo")) / (HI - LO)))
}

# median and spread of the numbers on stdin.
stats() { sort -n | awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2); print m, v[NR] - v[1]}'; }

# perfunc FILE_HI FILE_LO: instructions per op per function.
perfunc() {
	awk -v d=$((HI - LO)) '
		FNR == 1 {file++}
		/^fn=/ {fn = substr($0, 4); next}
		/^[0-9]/ {if (file == 1) s[fn] += $2; else s[fn] -= $2}
		END {for (f in s) if (s[f] / d >= 8 || s[f] / d <= -8) printf "%s\t%.0f\n", f, s[f] / d}' "$1" "$2"
}

echo "base: $(git -C "$root" log -1 --format='%h %s' "$base" | cut -c1-90)"
echo "new:  $newname"
echo "instructions per op: cachegrind, (Ir($HI x) - Ir($LO x)) / $((HI - LO)), median of $RUNS runs (spread = max - min)"
echo
printf '| %-22s | %14s | %14s | %7s |\n' benchmark "base (spread)" "new (spread)" change
printf '| %-22s | %14s | %14s | %7s |\n' --- ---: ---: ---:
for l in "${labels[@]}"; do
	bs=() ns=()
	for r in $(seq "$RUNS"); do
		bs+=("$(perop base "$l" "$r")")
		ns+=("$(perop new "$l" "$r")")
	done
	read -r bm bsp < <(printf '%s\n' "${bs[@]}" | stats)
	read -r nm nsp < <(printf '%s\n' "${ns[@]}" | stats)
	printf '| %-22s | %14s | %14s | %+6.1f%% |\n' "$l" "$bm ($bsp)" "$nm ($nsp)" \
		"$(awk -v a="$bm" -v b="$nm" 'BEGIN {print (b - a) * 100 / a}')"
	if [ "$FUNCS" = 1 ]; then
		f=$work/cg.%s.$(echo "$l" | tr / _).1
		# shellcheck disable=SC2059
		perfunc "$(printf "$f" base).hi" "$(printf "$f" base).lo" | sed "$FUNCMAP" | sort >"$work/fb"
		# shellcheck disable=SC2059
		perfunc "$(printf "$f" new).hi" "$(printf "$f" new).lo" | sort >"$work/fn"
		echo
		echo "  $l, instructions per op by function (run 1; base names mapped to the new packages):"
		join -t "$(printf '\t')" -a1 -a2 -e 0 -o 0,1.2,2.2 "$work/fb" "$work/fn" |
			awk -F'\t' '{printf "  %8d %8d %+7d  %s\n", $2, $3, $3 - $2, $1}' | sort -k3,3 -n -r
		echo
	fi
done

[ "$WALL" = 1 ] || exit 0
[ -x "$BENCHSTAT" ] || die "benchstat not found: go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"
echo
echo "wall clock: $COUNT rounds alternating base and new, -test.benchtime $BENCHTIME, under flock $LOCK"
for r in $(seq "$COUNT"); do
	for side in base new; do
		col=3 pkgcol=2
		if [ $side = new ]; then col=5 pkgcol=4; fi
		for l in "${labels[@]}"; do
			b=$(bin $side "$(field "$l" $pkgcol)")
			flock "$LOCK" "$b" -test.run '^$' -test.bench "$(field "$l" $col)" \
				-test.benchtime "$BENCHTIME" -test.benchmem -test.cpu 1 >"$work/wall.out" 2>&1 ||
				die "$b: $(tail -3 "$work/wall.out")"
			# One name per label on both sides, whatever the package.
			awk -v l="$l" '/^Benchmark/ {$1 = "Benchmark" l; print}' "$work/wall.out" >>"$work/wall.$side"
		done
	done
done
"$BENCHSTAT" base="$work/wall.base" new="$work/wall.new"
