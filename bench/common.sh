# bench/common.sh: what bench/failover and bench/switchover share.  Sourced
# after tools/rkcluster.sh; sets nothing up by itself.
#
# The benchmarks' common clock is the wall clock in microseconds since the
# epoch: bash's $EPOCHREALTIME on the benchmark's side, CLOCK_REALTIME in
# bench/committer.

# "5s", "200ms", "1.5s", "1min" or a bare number of milliseconds -> ms.
bench_ms()
{
	local v=$1
	case "$v" in
		*ms) v=${v%ms}; awk -v x="$v" 'BEGIN { if (x !~ /^[0-9]+(\.[0-9]+)?$/) exit 1; printf "%d\n", x }' ;;
		*min) v=${v%min}; awk -v x="$v" 'BEGIN { if (x !~ /^[0-9]+(\.[0-9]+)?$/) exit 1; printf "%d\n", x * 60000 }' ;;
		*s) v=${v%s}; awk -v x="$v" 'BEGIN { if (x !~ /^[0-9]+(\.[0-9]+)?$/) exit 1; printf "%d\n", x * 1000 }' ;;
		*) awk -v x="$v" 'BEGIN { if (x !~ /^[0-9]+$/) exit 1; printf "%d\n", x }' ;;
	esac || { echo "bench: not a duration: $1" >&2; return 1; }
}

bench_now() { echo "$EPOCHREALTIME"; }

# Seconds (with fractions) from a to b, with `digits` decimals.
bench_diff() { awk -v a="$1" -v b="$2" -v d="${3:-3}" 'BEGIN { printf "%.*f\n", d, b - a }'; }

# Median of numbers given as arguments.
bench_median()
{
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "n/a"; exit }
		if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]
		else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# As root: build the committer, give the postgres user the data and output
# directories, and run this benchmark again as postgres.  Usage:
#   bench_become_postgres DATA_DIR OUT_DIR "$0" "$@"
bench_become_postgres()
{
	local dir=$1 out=$2 self=$3
	shift 3
	[ "$(id -u)" -eq 0 ] || return 0
	make -s -C "$BENCH_SRC" committer
	mkdir -p "$dir" "$out"
	chown postgres: "$dir" "$out"
	exec runuser -u postgres -- "$self" "$@"
}

bench_check_committer()
{
	if [ ! -x "$BENCH_SRC/committer" ]; then
		make -s -C "$BENCH_SRC" committer ||
			{ echo "bench: build bench/committer first (make -C bench)" >&2; return 1; }
	fi
}

BENCH_CPID=
# Start the committer in the background over every node of the cluster.
# With BENCH_VIA_PORT set, through that one port instead (a proxy such as
# HAProxy): each acknowledged line then ends with the port of the server
# that committed it (inet_server_port()), which bench_wait_ack_elsewhere reads.
bench_start_committer()
{
	local dir=$1 acked=$2 errors=$3 start_id=$4 ports conninfo
	ports=$(awk '{ print $2 }' "$dir/rkcluster.ports" | paste -sd,)
	conninfo="host=127.0.0.1,127.0.0.1,127.0.0.1 port=$ports target_session_attrs=read-write"
	[ -n "${BENCH_VIA_PORT:-}" ] && conninfo="host=127.0.0.1 port=$BENCH_VIA_PORT"
	: >"$acked"
	: >"$errors"
	PGPASSWORD=$(rk_superuser_password "$dir") PGUSER=postgres "$BENCH_SRC/committer" \
		--conninfo "$conninfo dbname=postgres connect_timeout=1 application_name=bench_committer" \
		${BENCH_VIA_PORT:+--returning inet_server_port()} \
		--out "$acked" --errors "$errors" --start-id "$start_id" 2>>"${acked%.*}.committer.log" &
	BENCH_CPID=$!
}

bench_stop_committer()
{
	[ -n "$BENCH_CPID" ] || return 0
	kill -TERM "$BENCH_CPID" 2>/dev/null || true
	wait "$BENCH_CPID" 2>/dev/null || true
	BENCH_CPID=
}

# Wait until the committer has acknowledged `n` commits; fails after `timeout` s.
bench_wait_acks()
{
	local acked=$1 n=$2 timeout=${3:-30} i
	for i in $(seq 1 $((timeout * 20))); do
		[ "$(wc -l <"$acked")" -ge "$n" ] && return 0
		sleep 0.05
	done
	echo "bench: the committer acknowledged fewer than $n commits in ${timeout}s" >&2
	return 1
}

# The first acknowledged commit after time `since` on a port other than
# `old_port`, as "epoch<TAB>port"; waits up to `timeout` s.
bench_wait_ack_elsewhere()
{
	local acked=$1 old_port=$2 since=$3 timeout=${4:-60} i line
	for i in $(seq 1 $((timeout * 20))); do
		line=$(awk -F'\t' -v p="$old_port" -v t="$since" '$NF != p && $2 + 0 > t + 0 { print $2 "\t" $NF; exit }' "$acked")
		if [ -n "$line" ]; then echo "$line"; return 0; fi
		sleep 0.05
	done
	return 1
}

# Acknowledged ids (first column of `acked`) missing from bench_writes on a node.
bench_missing()
{
	local dir=$1 port=$2 acked=$3
	cut -f1 "$acked" | PGCONNECT_TIMEOUT=2 timeout 60 "$RK_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-h "$dir" -p "$port" -U postgres -d postgres \
		-c "CREATE TEMP TABLE acked_ids (id bigint)" \
		-c "\\copy acked_ids FROM pstdin" \
		-c "SELECT count(*) FROM acked_ids a WHERE NOT EXISTS (SELECT 1 FROM bench_writes b WHERE b.id = a.id)"
}

# The time of the newest `promote` event after `since`, from a node's
# rk_events (the kit writes its journal there once the node is primary).
bench_promote_time()
{
	local dir=$1 port=$2 since=$3 timeout=${4:-10} i t
	for i in $(seq 1 $((timeout * 10))); do
		t=$(rk_sql "$dir" "$port" "SELECT extract(epoch FROM at) FROM rk_events
			WHERE kind = 'promote' AND at > to_timestamp($since) ORDER BY event_id DESC LIMIT 1" 2>/dev/null) || t=
		if [ -n "$t" ]; then echo "$t"; return 0; fi
		sleep 0.1
	done
	return 1
}

# What a node says about itself (the worker's readiness line).
bench_readiness()
{
	rk_sql "$1" "$2" "SELECT coalesce(readiness, '') FROM rk_local_node()" 2>/dev/null || echo "(no answer)"
}
