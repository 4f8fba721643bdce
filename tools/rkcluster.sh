# rkcluster.sh: the walkthrough's three-node topology on loopback, built with
# replication_kit's SQL calls only, for the benchmarks in bench/.  A bash
# library: source it, do not run it.  Every function runs as the `postgres`
# OS user and works under `set -euo pipefail`.
#
#   rk_cluster_create DIR PORT_MASTER PORT_SLAVE PORT_ASYNC [postgresql.conf line ...]
#       pgmaster, pgslave (sync) and pgasyncslave (potential) under
#       FIRST 1, all streaming; DIR/<node> data, DIR/<node>.log server log,
#       sockets in DIR.  Destroys whatever an earlier run left in DIR first.
#       With RK_HTTP_OFFSET=N in the environment every node also serves
#       replication_kit.http_address on 127.0.0.1, its port + N.
#   rk_cluster_destroy DIR        immediate stop of all three, rm -rf of their files
#   rk_primary_port DIR           port of the node that accepts writes now
#   rk_primary_node DIR           its name
#   rk_node_port DIR NODE         a node's port
#   rk_node_of_port DIR PORT      the node on a port
#   rk_node_pids DIR NODE         postmaster PID and its children, one a line
#   rk_kill9 DIR NODE             kill -9 the postmaster and all its children;
#                                 sets RK_KILL_TIME (epoch seconds.microseconds)
#   rk_start DIR NODE             pg_ctl start with the node's log and port
#   rk_wait_streaming DIR PRIMARY_PORT N [TIMEOUT_S]
#                                 until N standbys stream from that primary,
#                                 on its timeline, and replay its WAL
#   rk_wait_whole DIR [TIMEOUT_S] until one primary has both standbys
#                                 following and every worker sees every peer
#   rk_cluster_report DIR         rk_status() and the WAL receiver of each node
#   rk_sql DIR PORT SQL           one statement over the node's socket, -At output
#
#   rk_superuser_password DIR     the password of `postgres` over TCP
#
# Authentication: the superuser `postgres` is trusted on the Unix socket (DIR
# and the socket are mode 0700: only this OS user reaches them) and has a
# SCRAM password over TCP, for clients such as bench/committer.  The
# replication role authenticates with SCRAM over TCP through the lines the kit
# adds to pg_hba.conf itself.  Both passwords are random per cluster (or
# RK_SUPERUSER_PASSWORD / RK_REPL_PASSWORD) and kept in DIR/rkcluster.secrets.

RK_BINDIR=${RK_BINDIR:-/usr/lib/postgresql/15/bin}
RK_NODES=(pgmaster pgslave pgasyncslave)

_rk_log() { echo "rkcluster: $*" >&2; }

# Microseconds since the epoch, from bash's own clock.
_rk_now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }

_rk_random_password() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }

rk_superuser_password()
{
	local dir=$1 k v
	while IFS='=' read -r k v; do
		if [ "$k" = superuser ]; then echo "$v"; return 0; fi
	done <"$dir/rkcluster.secrets"
	return 1
}

rk_node_port()
{
	local dir=$1 node=$2 n p
	[ -f "$dir/rkcluster.ports" ] || { _rk_log "no $dir/rkcluster.ports"; return 1; }
	while read -r n p; do
		if [ "$n" = "$node" ]; then echo "$p"; return 0; fi
	done <"$dir/rkcluster.ports"
	_rk_log "unknown node $node"
	return 1
}

rk_node_of_port()
{
	local dir=$1 port=$2 n p
	while read -r n p; do
		if [ "$p" = "$port" ]; then echo "$n"; return 0; fi
	done <"$dir/rkcluster.ports"
	return 1
}

# One statement over the Unix socket, with deadlines on connecting and on the
# whole call: a hung server must not hang the caller.
rk_sql()
{
	local dir=$1 port=$2 sql=$3
	PGCONNECT_TIMEOUT=2 timeout 10 "$RK_BINDIR/psql" -X -At -v ON_ERROR_STOP=1 \
		-h "$dir" -p "$port" -U postgres -d postgres -c "$sql"
}

# The PID of a node's running postmaster (from postmaster.pid), or failure.
_rk_postmaster_pid()
{
	local dir=$1 node=$2 pid
	[ -f "$dir/$node/postmaster.pid" ] || return 1
	pid=$(head -n 1 "$dir/$node/postmaster.pid" 2>/dev/null) || return 1
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	# A recycled PID is not our postmaster: its data directory must be this one.
	[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(cd "$dir/$node" && pwd -P)" ] || return 1
	echo "$pid"
}

rk_node_pids()
{
	local dir=$1 node=$2 pm
	pm=$(_rk_postmaster_pid "$dir" "$node") || return 1
	echo "$pm"
	pgrep -P "$pm" || true
}

rk_kill9()
{
	local dir=$1 node=$2 pm pids
	pm=$(_rk_postmaster_pid "$dir" "$node") || { _rk_log "$node is not running"; return 1; }
	# Freeze the postmaster so that it forks nothing between the listing and
	# the kill; its children are listed while it is still their parent.
	kill -STOP "$pm"
	pids=$(rk_node_pids "$dir" "$node" | tr '\n' ' ')
	RK_KILL_TIME=$EPOCHREALTIME
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
	local i
	for i in $(seq 1 100); do
		kill -0 "$pm" 2>/dev/null || return 0
		sleep 0.05
	done
	_rk_log "postmaster $pm of $node still there after kill -9"
	return 1
}

rk_start()
{
	local dir=$1 node=$2 port
	port=$(rk_node_port "$dir" "$node")
	# The fence at start may ask the other nodes for a few seconds first.
	local msg
	# (pg_ctl warns about the stale postmaster.pid a kill -9 leaves; only
	# a failure is worth showing.)
	if ! msg=$("$RK_BINDIR/pg_ctl" -D "$dir/$node" -l "$dir/$node.log" -o "-p $port" -w -t 120 start 2>&1); then
		echo "$msg" >&2
		return 1
	fi
}

# Prints the ports of the nodes that accept writes, the first one on stdout's
# first line; fails if there is none.  A fenced primary looks read-only.
rk_primary_port()
{
	local dir=$1 n p found=()
	for n in "${RK_NODES[@]}"; do
		p=$(rk_node_port "$dir" "$n") || continue
		_rk_postmaster_pid "$dir" "$n" >/dev/null || continue
		if [ "$(rk_sql "$dir" "$p" "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'" 2>/dev/null)" = t ]; then
			found+=("$p")
		fi
	done
	[ ${#found[@]} -gt 0 ] || return 1
	[ ${#found[@]} -eq 1 ] || _rk_log "more than one node accepts writes: ${found[*]}"
	printf '%s\n' "${found[@]}" | head -n 1
}

rk_primary_node()
{
	local dir=$1 p
	p=$(rk_primary_port "$dir") || return 1
	rk_node_of_port "$dir" "$p"
}

# How many standbys follow the primary on a port now: each one streams from
# it (its pg_stat_replication and the standby's own pg_stat_wal_receiver
# agree), receives the primary's current timeline, and has replayed the WAL
# the primary had written at `marker`.  A standby whose WAL diverged from
# the new timeline reconnects over and over and shows as "streaming" for
# moments; the timeline check tells it apart.
_rk_following()
{
	local dir=$1 port=$2 marker=$3 tli n p count=0 ok
	tli=$(rk_sql "$dir" "$port" "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int" 2>/dev/null) || { echo 0; return; }
	for n in "${RK_NODES[@]}"; do
		p=$(rk_node_port "$dir" "$n")
		[ "$p" = "$port" ] && continue
		ok=$(rk_sql "$dir" "$port" "SELECT count(*) FROM pg_stat_replication WHERE application_name = '$n' AND state = 'streaming'" 2>/dev/null) || ok=0
		[ "$ok" = 1 ] || continue
		ok=$(rk_sql "$dir" "$p" "SELECT received_tli = $tli AND pg_last_wal_replay_lsn() >= '$marker'
			FROM pg_stat_wal_receiver WHERE status = 'streaming'" 2>/dev/null) || ok=f
		[ "$ok" = t ] && count=$((count + 1))
	done
	echo "$count"
}

rk_wait_streaming()
{
	local dir=$1 port=$2 want=$3 timeout=${4:-60} deadline marker=
	deadline=$(( $(_rk_now_us) + timeout * 1000000 ))
	while [ "$(_rk_now_us)" -lt "$deadline" ]; do
		[ -n "$marker" ] || marker=$(rk_sql "$dir" "$port" "SELECT pg_current_wal_lsn()" 2>/dev/null) || marker=
		if [ -n "$marker" ] && [ "$(_rk_following "$dir" "$port" "$marker")" -ge "$want" ]; then
			return 0
		fi
		sleep 0.1
	done
	_rk_log "timed out after ${timeout}s waiting for $want standbys to follow the primary on port $port"
	return 1
}

# The whole cluster is back: one primary, both standbys following it,
# every node's worker reaching both others.  Prints the primary's port.
rk_wait_whole()
{
	local dir=$1 timeout=${2:-90} deadline p n ok
	deadline=$(( $(_rk_now_us) + timeout * 1000000 ))
	while [ "$(_rk_now_us)" -lt "$deadline" ]; do
		ok=1
		p=$(rk_primary_port "$dir" 2>/dev/null) || ok=0
		if [ $ok = 1 ]; then
			local left=$(( (deadline - $(_rk_now_us)) / 1000000 ))
			[ "$left" -ge 1 ] || break
			rk_wait_streaming "$dir" "$p" 2 "$left" 2>/dev/null || ok=0
		fi
		if [ $ok = 1 ]; then
			for n in "${RK_NODES[@]}"; do
				[ "$(rk_sql "$dir" "$(rk_node_port "$dir" "$n")" \
					"SELECT count(*) FROM rk_peer_view() WHERE reachable AND NOT is_self" 2>/dev/null)" = 2 ] || { ok=0; break; }
			done
		fi
		if [ $ok = 1 ]; then echo "$p"; return 0; fi
		sleep 0.2
	done
	_rk_log "timed out after ${timeout}s waiting for the cluster in $dir to be whole"
	return 1
}

# What each node says about itself and the others, for a report when
# something does not come back.
rk_cluster_report()
{
	local dir=$1 n p
	for n in "${RK_NODES[@]}"; do
		p=$(rk_node_port "$dir" "$n")
		echo "--- $n (port $p): rk_status()"
		rk_sql "$dir" "$p" "SELECT node_name, role, connection, timeline, term, remark FROM rk_status()" 2>&1 | sed 's/^/    /'
		echo "--- $n: pg_stat_wal_receiver"
		rk_sql "$dir" "$p" "SELECT status, received_tli, flushed_lsn, sender_port FROM pg_stat_wal_receiver" 2>&1 | sed 's/^/    /'
	done
}

# PIDs of the kit's rk_rejoin helpers working on a data directory of DIR
# (started by our own servers; found by their exact PGDATA argument).
_rk_rejoin_helpers()
{
	local dir=$1 f pid args
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}; pid=${pid%/cmdline}
		args=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
		case "$args" in
			*/rk_rejoin\ "$dir"/pgmaster\ * | */rk_rejoin\ "$dir"/pgslave\ * | */rk_rejoin\ "$dir"/pgasyncslave\ *)
				echo "$pid" ;;
		esac
	done
}

rk_cluster_destroy()
{
	local dir=$1 n pid round
	[ -n "$dir" ] && [ "$dir" != / ] || { _rk_log "refusing to destroy '$dir'"; return 1; }
	[ -d "$dir" ] || return 0
	dir=$(cd "$dir" && pwd -P)
	# A rejoin helper could start a server again behind our back: stop the
	# helpers first, and check twice.
	for round in 1 2 3; do
		for pid in $(_rk_rejoin_helpers "$dir"); do
			kill -KILL "$pid" 2>/dev/null || true
		done
		for n in "${RK_NODES[@]}"; do
			if _rk_postmaster_pid "$dir" "$n" >/dev/null; then
				"$RK_BINDIR/pg_ctl" -D "$dir/$n" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
			fi
		done
		sleep 0.2
	done
	for n in "${RK_NODES[@]}"; do
		if pid=$(_rk_postmaster_pid "$dir" "$n"); then
			_rk_log "$n (postmaster $pid) would not stop"
			return 1
		fi
		rm -rf "${dir:?}/$n" "${dir:?}/$n.log"
	done
	rm -f "$dir/rkcluster.ports" "$dir/rkcluster.secrets" "$dir"/.s.PGSQL.*
}

# With RK_HTTP_OFFSET set, each node serves the kit's HTTP endpoint on
# 127.0.0.1, port (its PostgreSQL port + RK_HTTP_OFFSET).
_rk_http_line()
{
	[ -n "${RK_HTTP_OFFSET:-}" ] || return 0
	echo "replication_kit.http_address = '127.0.0.1:$(($1 + RK_HTTP_OFFSET))'"
}

rk_cluster_create()
{
	local dir=$1 p_master=$2 p_slave=$3 p_async=$4
	shift 4
	local n p cmd rows su_pw repl_pw
	su_pw=${RK_SUPERUSER_PASSWORD:-$(_rk_random_password)}
	repl_pw=${RK_REPL_PASSWORD:-$(_rk_random_password)}
	mkdir -p "$dir"
	# The superuser is trusted on the Unix socket: only this OS user may reach it.
	chmod 700 "$dir"
	dir=$(cd "$dir" && pwd -P)
	rk_cluster_destroy "$dir"
	declare -A port=([pgmaster]=$p_master [pgslave]=$p_slave [pgasyncslave]=$p_async)
	for n in "${RK_NODES[@]}"; do
		if (echo >"/dev/tcp/127.0.0.1/${port[$n]}") 2>/dev/null; then
			_rk_log "port ${port[$n]} for $n is in use; pick other ports"
			return 1
		fi
	done
	for n in "${RK_NODES[@]}"; do echo "$n ${port[$n]}"; done >"$dir/rkcluster.ports"
	(umask 077; printf 'superuser=%s\nreplication=%s\n' "$su_pw" "$repl_pw" >"$dir/rkcluster.secrets")

	# The primary: initdb, the kit preloaded, its port and socket directory.
	"$RK_BINDIR/initdb" -D "$dir/pgmaster" -U postgres --auth-local=trust \
		--auth-host=scram-sha-256 >"$dir/pgmaster.initdb.log" 2>&1 ||
		{ cat "$dir/pgmaster.initdb.log" >&2; return 1; }
	rm -f "$dir/pgmaster.initdb.log"
	{
		echo "shared_preload_libraries = 'replication_kit'"
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $p_master"
		echo "unix_socket_directories = '$dir'"
		echo "unix_socket_permissions = 0700"
		_rk_http_line "$p_master"
		for p in "$@"; do echo "$p"; done
	} >>"$dir/pgmaster/postgresql.conf"
	rk_start "$dir" pgmaster
	rk_sql "$dir" "$p_master" "CREATE EXTENSION replication_kit" >/dev/null
	PGOPTIONS='-c log_statement=none' rk_sql "$dir" "$p_master" "ALTER ROLE postgres PASSWORD '$su_pw'" >/dev/null
	rows=$(PGOPTIONS='-c client_min_messages=warning' rk_sql "$dir" "$p_master" \
		"SELECT needs_restart FROM rk_setup_primary('pgmaster', '127.0.0.1', $p_master)")
	if grep -qx t <<<"$rows"; then
		"$RK_BINDIR/pg_ctl" -D "$dir/pgmaster" -l "$dir/pgmaster.log" -w -t 60 restart >/dev/null
	fi
	# The password is on this command line: keep it out of the server log.
	PGOPTIONS='-c log_statement=none' rk_sql "$dir" "$p_master" \
		"SELECT rk_create_replicator('replicator', '$repl_pw')" >/dev/null
	rk_sql "$dir" "$p_master" "SELECT rk_allow_replication('127.0.0.1/32')" >/dev/null

	# The standbys: each cloned with the exact command rk_add_standby returns.
	for n in pgslave pgasyncslave; do
		cmd=$(rk_sql "$dir" "$p_master" "SELECT rk_add_standby('$n', '127.0.0.1', ${port[$n]})")
		case "$cmd" in
			pg_basebackup\ *) ;;
			*) _rk_log "rk_add_standby('$n') returned no clone command: $cmd"; return 1 ;;
		esac
		(
			unset PGHOST PGPORT PGDATABASE PGUSER PGSERVICE
			export PATH="$RK_BINDIR:$PATH" PGDATA="$dir/$n" PGPASSWORD="$repl_pw"
			bash -c "$cmd"
		) >"$dir/$n.clone.log" 2>&1 || { cat "$dir/$n.clone.log" >&2; return 1; }
		rm -f "$dir/$n.clone.log"
		# The clone carries the primary's postgresql.conf; it gets its own port.
		{ echo "port = ${port[$n]}"; _rk_http_line "${port[$n]}"; } >>"$dir/$n/postgresql.conf"
		rk_start "$dir" "$n"
	done

	PGOPTIONS='-c client_min_messages=warning' rk_sql "$dir" "$p_master" "SELECT rk_set_sync('FIRST', 1)" >/dev/null
	rk_wait_streaming "$dir" "$p_master" 2 60
	rk_wait_whole "$dir" 60 >/dev/null
}
