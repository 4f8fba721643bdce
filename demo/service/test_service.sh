#!/usr/bin/env bash
#
# test_service.sh
#	Black-box checks of rk_social over HTTP with curl.  Starts the service
#	against the connection strings in the environment, runs every check,
#	stops the service, and exits non-zero naming the first check that failed.
#
# Environment:
#   RK_WRITE_CONNINFO  libpq string that finds the primary (required)
#   RK_READ_CONNINFO   libpq string for reads (required)
#   RK_SERVICE_PORT    port to listen on, bound to 127.0.0.1 (required)
#   RK_SOCIAL          path of the binary (default: rk_social beside this script)
#   RK_READ_WAIT       seconds to wait for a new user to reach the standbys (default 10)
#
# Works against one server, a primary with a standby, or the 3-node cluster:
# reads that go to a standby are polled until replication catches up.

set -u

here=$(cd "$(dirname "$0")" && pwd)
bin=${RK_SOCIAL:-$here/rk_social}
: "${RK_WRITE_CONNINFO:?set RK_WRITE_CONNINFO}"
: "${RK_READ_CONNINFO:?set RK_READ_CONNINFO}"
: "${RK_SERVICE_PORT:?set RK_SERVICE_PORT}"
read_wait=${RK_READ_WAIT:-10}
base="http://127.0.0.1:$RK_SERVICE_PORT"

work=$(mktemp -d "${TMPDIR:-/tmp}/rk_social_test.XXXXXX")
svc_pid=
passed=0

cleanup() {
	if [ -n "$svc_pid" ] && kill -0 "$svc_pid" 2>/dev/null; then
		kill -TERM "$svc_pid" 2>/dev/null
		wait "$svc_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $1" >&2
	[ -s "$work/body" ] && echo "  last response body: $(head -c 400 "$work/body")" >&2
	echo "  service log (last lines):" >&2
	tail -n 5 "$work/service.log" 2>/dev/null | sed 's/^/    /' >&2
	exit 1
}

ok() {
	passed=$((passed + 1))
	echo "ok $passed - $1"
}

# req METHOD PATH [curl args...]: status code to stdout, body to $work/body
req() {
	local method=$1 path=$2
	shift 2
	curl -s -o "$work/body" -w '%{http_code}' --max-time 30 -X "$method" "$@" "$base$path"
}

post_json() {
	req POST /user/register -H 'Content-Type: application/json' --data-binary "$1"
}

# expect_status CHECK WANT GOT
expect_status() {
	[ "$3" = "$2" ] || fail "$1: expected HTTP $2, got ${3:-no answer}"
}

body_has() {
	grep -qF -- "$1" "$work/body"
}

# user_id from a register answer, {"user_id": "123"}
user_id() {
	sed -n 's/.*"user_id": *"\([0-9][0-9]*\)".*/\1/p' "$work/body"
}

# GET /user/ID until it is 200 (a standby may lag a little behind the primary)
get_user() {
	local id=$1 deadline=$((SECONDS + read_wait)) code
	while :; do
		code=$(req GET "/user/$id")
		[ "$code" != 404 ] && break
		[ $SECONDS -ge $deadline ] && break
		sleep 0.2
	done
	echo "$code"
}

[ -x "$bin" ] || { echo "FAIL: $bin not built (run make)" >&2; exit 1; }

"$bin" --listen "127.0.0.1:$RK_SERVICE_PORT" --write "$RK_WRITE_CONNINFO" \
	--read "$RK_READ_CONNINFO" --schema-init >"$work/service.log" 2>&1 &
svc_pid=$!

deadline=$((SECONDS + 20))
until [ "$(req GET /health)" = 200 ]; do
	kill -0 "$svc_pid" 2>/dev/null || fail "service exited at startup"
	[ $SECONDS -ge $deadline ] && fail "service did not answer /health within 20s"
	sleep 0.2
done
body_has '"write": "ok"' || fail "health: no primary reachable: $(cat "$work/body")"
ok "service started, health: $(cat "$work/body")"

# 1. register + get round trip
tag="t$$_$RANDOM"
code=$(post_json "{\"first_name\": \"Ivan_$tag\", \"second_name\": \"Петров\", \"birthdate\": \"1990-02-28\", \"biography\": \"likes \\\"quotes\\\" and\\nnew lines \\u263a\", \"city\": \"Moscow\", \"password\": \"s3cret\"}")
expect_status "register" 200 "$code"
id=$(user_id)
[ -n "$id" ] || fail "register: no user_id in the answer"
code=$(get_user "$id")
expect_status "get registered user $id" 200 "$code"
body_has "\"id\": \"$id\"" || fail "get: wrong id"
body_has "\"first_name\": \"Ivan_$tag\"" || fail "get: first_name differs"
body_has '"second_name": "Петров"' || fail "get: second_name differs (UTF-8)"
body_has '"birthdate": "1990-02-28"' || fail "get: birthdate differs"
body_has '"biography": "likes \"quotes\" and\nnew lines ☺"' || fail "get: biography differs (escapes)"
body_has '"city": "Moscow"' || fail "get: city differs"
body_has 'password' && fail "get: answer mentions the password"
body_has 's3cret' && fail "get: answer contains the password"
ok "register + get round trip (user $id)"

# the password is stored as a yescrypt hash, and the hashing checks itself
stored=$(psql -X -At -d "$RK_WRITE_CONNINFO" -c "SELECT password_hash FROM users WHERE id = $id" 2>&1)
case "$stored" in
	'$y$'*) ;;
	*) fail "stored password is not a yescrypt hash: $stored" ;;
esac
case "$stored" in
	*s3cret*) fail "stored password contains the password" ;;
esac
if [ -x "$here/password_test" ]; then
	"$here/password_test" >"$work/pwtest" 2>&1 || fail "password_test: $(cat "$work/pwtest")"
fi
ok "password stored as yescrypt; verification is exact"

# optional fields may be left out, and are null then
code=$(post_json '{"first_name":"Min","second_name":"Imal","birthdate":"2000-02-29","password":"x"}')
expect_status "register without optional fields" 200 "$code"
id2=$(user_id)
code=$(get_user "$id2")
expect_status "get user without optional fields" 200 "$code"
body_has '"biography": null' && body_has '"city": null' || fail "optional fields are not null"
ok "optional fields absent -> null"

# 2. bad JSON
for body in '{"first_name": "a",' 'not json' '["a"]' '{"first_name": "a\q"}' '{} trailing' ''; do
	code=$(post_json "$body")
	expect_status "bad JSON [$body]" 400 "$code"
	body_has '"error"' || fail "bad JSON [$body]: no error field"
done
ok "bad JSON -> 400"

# 3. missing / empty fields, wrong types, bad birthdate
code=$(post_json '{"first_name":"A","birthdate":"1990-01-01","password":"x"}')
expect_status "missing second_name" 400 "$code"
body_has 'second_name' || fail "missing field: reason does not name the field"
code=$(post_json '{"first_name":"","second_name":"B","birthdate":"1990-01-01","password":"x"}')
expect_status "empty first_name" 400 "$code"
code=$(post_json '{"first_name":"A","second_name":"B","birthdate":"1990-01-01","password":null}')
expect_status "null password" 400 "$code"
ok "missing or empty required field -> 400"
code=$(post_json '{"first_name":1,"second_name":"B","birthdate":"1990-01-01","password":"x"}')
expect_status "number as first_name" 400 "$code"
code=$(post_json '{"first_name":{"x":"y"},"second_name":"B","birthdate":"1990-01-01","password":"x"}')
expect_status "object as first_name" 400 "$code"
for d in 1990-02-30 1990-13-01 90-01-01 1990-1-1 "1990-01-01 00:00" 0000-01-01 abc; do
	code=$(post_json "{\"first_name\":\"A\",\"second_name\":\"B\",\"birthdate\":\"$d\",\"password\":\"x\"}")
	expect_status "birthdate $d" 400 "$code"
done
ok "wrong types and bad birthdates -> 400"

# 4. a 10 MB body is refused, and the service still answers
head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$work/big"
code=$(req POST /user/register -H 'Content-Type: application/json' --data-binary @"$work/big")
expect_status "10 MB body" 413 "$code"
code=$(curl -s -o /dev/null -D "$work/headers" -w '%{http_code}' --max-time 30 -X POST \
	-H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$work/big" "$base/user/register")
expect_status "10 MB chunked body" 413 "$code"
grep -qi '^connection: close' "$work/headers" || fail "10 MB chunked body: the 413 does not close the connection"
# an endless chunked body gets its 413 as soon as it passes the cap, long before it ends
start=$SECONDS
code=$(yes 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' | head -c $((1024 * 1024 * 1024)) |
	curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X POST -H 'Content-Type: application/json' \
		-H 'Transfer-Encoding: chunked' -T - "$base/user/register" 2>/dev/null)
expect_status "1 GB chunked body" 413 "$code"
[ $((SECONDS - start)) -lt 30 ] || fail "a 1 GB chunked body was read for $((SECONDS - start)) s"
grep -q 'chunked request body beyond' "$work/service.log" || fail "the refused chunked body is not in the log"
code=$(req GET /health)
expect_status "health after 10 MB bodies" 200 "$code"
code=$(get_user "$id")
expect_status "get after 10 MB bodies" 200 "$code"
ok "10 MB body -> 413 (chunked: 413 and close, also when endless), service still answers"

# the log is one line per message, whatever a client sends (libpq's
# multi-line errors and client bytes are escaped, never written raw)
req GET '/user/1%0a2026-01-01T00:00:00.000Z%20rk_social%20info:%20forged%1b[2J' >/dev/null
req GET '/nosuch%0d%0aforged' >/dev/null
# C1 controls in a method (logged as sent): CSI raw (0x9b) and as UTF-8
# (U+009B), which terminals may act on
req "$(printf 'X\2332J\302\2332J')" /health >/dev/null
if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f-\xff]' "$work/service.log"; then
	fail "the service log holds a raw control byte"
fi
if grep -qv '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9:.]*Z rk_social ' "$work/service.log"; then
	fail "the service log has a line that is not one of its messages: $(grep -v '^[0-9]\{4\}-' "$work/service.log" | head -1)"
fi
ok "the service log holds one message per line and no raw control byte"

# 5-6. ids that are not positive integers
for bad in abc '1;drop%20table%20users' 0 -1 1.5 '%201' '1%00' 99999999999999999999; do
	code=$(req GET "/user/$bad")
	expect_status "id [$bad]" 400 "$code"
done
ok "bad ids (abc, 1;drop table users, 0, -1, ...) -> 400"

# 7. SQL in a name is data
inj="Robert'); drop table users; --"
code=$(post_json "{\"first_name\":\"$inj\",\"second_name\":\"Tables\",\"birthdate\":\"2001-01-01\",\"password\":\"'; drop table users; --\"}")
expect_status "register with SQL in the name" 200 "$code"
id3=$(user_id)
code=$(get_user "$id3")
expect_status "get user with SQL in the name" 200 "$code"
body_has "\"first_name\": \"$inj\"" || fail "SQL in name: not read back verbatim"
code=$(get_user "$id")
expect_status "table still there (old user readable)" 200 "$code"
code=$(post_json '{"first_name":"After","second_name":"Injection","birthdate":"1980-06-15","password":"x"}')
expect_status "table still there (register works)" 200 "$code"
ok "name with '); drop table users; -- stored and read back verbatim"

# 8. unknown id, unknown route, wrong method
code=$(req GET /user/9223372036854775807)
expect_status "unknown id" 404 "$code"
ok "unknown id -> 404"
code=$(req GET /no/such/route)
expect_status "unknown route" 404 "$code"
code=$(req GET /user/register)
expect_status "GET /user/register" 405 "$code"
code=$(req DELETE "/user/$id")
expect_status "DELETE /user/id" 405 "$code"
code=$(req POST /health)
expect_status "POST /health" 405 "$code"
ok "unknown route -> 404, wrong method -> 405"

# the service stops cleanly on SIGTERM
kill -TERM "$svc_pid"
for _ in $(seq 1 50); do
	kill -0 "$svc_pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$svc_pid" 2>/dev/null && fail "service did not stop within 5s of SIGTERM"
wait "$svc_pid"
rc=$?
svc_pid=
[ "$rc" = 0 ] || fail "service exited with status $rc after SIGTERM"
ok "SIGTERM stops the service cleanly"

echo "all $passed checks passed"
