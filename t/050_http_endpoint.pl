# replication_kit.http_address: the read-only HTTP endpoint.  Three nodes,
# each with its own address.  /primary answers 200 only on the primary,
# /standby only on streaming standbys (with a lag bound), /health on all,
# /status is rk_status() as JSON, /metrics passes `promtool check metrics`.
# Bad input: other methods, unknown paths, a huge head, a malformed request
# line, slow clients (slowloris) and more connections than it takes; none
# of it changes an answer or stops the primary from holding its lease.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(time);
use lib 't';
use RKTest;

my @http = map { PostgreSQL::Test::Cluster::get_free_port() } 1 .. 3;
my ($primary, $pgslave, $pgasync) = build_cluster('replication_kit.http_address' => "'127.0.0.1:$http[0]'");
my $pgmaster_node = $primary;
# Clones copy the primary's postgresql.conf: each gets its own port.
for my $i (1, 2)
{
	my $n = ($pgslave, $pgasync)[ $i - 1 ];
	$n->append_conf('postgresql.conf', "replication_kit.http_address = '127.0.0.1:$http[$i]'\n");
	$n->restart;
}
my %port = (pgmaster => $http[0], pgslave => $http[1], pgasyncslave => $http[2]);

# One request, raw; returns (status code, head, body), or (0) if the
# connection was closed without an answer.
sub request
{
	my ($port, $raw, $timeout) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 2)
	  or return (0, '', "connect: $!");
	$s->send($raw);
	my $resp = '';
	my $deadline = time + ($timeout // 5);
	$s->blocking(0);
	while (time < $deadline)
	{
		my $buf;
		my $n = sysread($s, $buf, 65536);
		last if defined $n && $n == 0;
		if (defined $n) { $resp .= $buf; next; }
		select(undef, undef, undef, 0.02);
	}
	close $s;
	return (0, '', '') unless $resp =~ m{^HTTP/1\.1 (\d{3})};
	my $code = $1;
	my ($head, $body) = split /\r\n\r\n/, $resp, 2;
	return ($code, $head, $body // '');
}

sub get { my ($port, $path) = @_; return request($port, "GET $path HTTP/1.1\r\nHost: x\r\n\r\n"); }

# Wait until the endpoints listen and the standbys stream.
for my $name (sort keys %port)
{
	ok(wait_until(sub { (get($port{$name}, '/health'))[0] == 200 }, 60), "$name: /health answers 200");
}

is((get($port{pgmaster}, '/primary'))[0], 200, 'pgmaster: /primary 200');
is((get($port{$_}, '/primary'))[0], 503, "$_: /primary 503") for qw(pgslave pgasyncslave);
ok(wait_until(sub { (get($port{$_}, '/standby'))[0] == 200 }, 60), "$_: /standby 200") for qw(pgslave pgasyncslave);
is((get($port{pgmaster}, '/standby'))[0], 503, 'pgmaster: /standby 503');
# The lag is known once the worker has probed the primary.
ok(wait_until(sub { (get($port{pgslave}, '/standby?lag=1GB'))[0] == 200 }, 30), 'a lag bound it meets: 200');
is((get($port{pgslave}, '/replica?lag=1048576'))[0], 200, '/replica is /standby, lag in bytes');
is((get($port{pgslave}, '/standby?lag=lots'))[0], 400, 'a malformed lag bound: 400');
my ($code, $head, $body) = get($port{pgmaster}, '/primary');
my $self = decode_json($body);
is($self->{role}, 'primary', 'the body says the role');
ok($self->{lease_remaining_ms} > 0, 'and the lease left');
($code, $head, $body) = request($port{pgmaster}, "HEAD /primary HTTP/1.1\r\n\r\n");
is($code, 200, 'HEAD /primary: 200');
is($body, '', 'without a body');

# /status: rk_status() as JSON.
($code, $head, $body) = get($port{pgslave}, '/status');
is($code, 200, '/status 200');
my $rows = decode_json($body);
is(join(',', sort map { $_->{node_name} } @$rows), 'pgasyncslave,pgmaster,pgslave', '/status lists the three nodes');
is((grep { $_->{is_self} } @$rows)[0]{node_name}, 'pgslave', 'seen from pgslave');

# /metrics: Prometheus text format.
ok(wait_until(sub { (get($port{pgmaster}, '/metrics'))[2] =~ /^replication_kit_peer_reachable\{node="pgasyncslave"\} 1$/m }, 30),
	'the primary reached the restarted standbys');
($code, $head, $body) = get($port{pgmaster}, '/metrics');
is($code, 200, '/metrics 200');
like($head, qr{Content-Type: text/plain; version=0\.0\.4}, 'the exposition format');
like($body, qr/^replication_kit_role\{role="primary"\} 1$/m, 'the role');
like($body, qr/^replication_kit_peer_reachable\{node="pgslave"\} 1$/m, 'the peers');
like($body, qr/^replication_kit_lease_remaining_seconds [0-9.]+$/m, 'the lease');
my $tmp = PostgreSQL::Test::Utils::tempdir;
for my $name (sort keys %port)
{
	# A fetch that fails (say, a connection refused) is no verdict on the
	# format: wait for a 200, and say what came instead.
	my $fetched = wait_until(sub {
		($code, undef, $body) = get($port{$name}, '/metrics');
		diag("$name: /metrics answered $code: $body") if $code != 200;
		return $code == 200;
	}, 30);
	ok($fetched, "$name: /metrics 200");
	open my $fh, '>', "$tmp/$name.prom" or die;
	print $fh $body;
	close $fh;
	my ($out, $err);
	my $ok = IPC::Run::run(['promtool', 'check', 'metrics'], '<', "$tmp/$name.prom", '>', \$out, '2>', \$err);
	ok($ok, "$name: promtool check metrics accepts /metrics") or diag("$out$err");
}

# Bad input.
is((request($port{pgmaster}, "POST /primary HTTP/1.1\r\nContent-Length: 0\r\n\r\n"))[0], 405, 'POST: 405');
is((request($port{pgmaster}, "DELETE /status HTTP/1.1\r\n\r\n"))[0], 405, 'DELETE: 405');
is((get($port{pgmaster}, '/etc/passwd'))[0], 404, 'an unknown path: 404');
is((get($port{pgmaster}, '/primary/../status'))[0], 404, 'no path tricks: 404');
is((request($port{pgmaster}, "GARBAGE\r\n\r\n"))[0], 400, 'a malformed request line: 400');
is((request($port{pgmaster}, "GET /primary HTTP/1.1\r\nX-Big: " . ('a' x 20000) . "\r\n\r\n"))[0], 431,
	'a 20 kB head: 431');
# Slow clients: a request that never ends is cut off after 2 s, and while
# more connections than it takes are held open, it still answers once they
# are cut, and the primary keeps its lease all along.
my $t0 = time;
($code) = request($port{pgmaster}, "GET /primary HTTP/1.1\r\n", 10);
my $took = time - $t0;
ok($took < 5, sprintf('a request that never ends is cut off (after %.1f s)', $took));
my @slow = map {
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port{pgmaster}, Proto => 'tcp');
	$s->send("GET /pri") if $s;
	$s
} 1 .. 40;
ok(wait_until(sub { (get($port{pgmaster}, '/primary'))[0] == 200 }, 10),
	'with 40 slow connections open, /primary answers 200 again within seconds');
# 100 connections that send nothing, opened again as fast as they are cut:
# a check that sends its request at once still gets its answer.
my @idle;
my $answered = 0;
for my $round (1 .. 5)
{
	push @idle, grep { defined } map {
		IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port{pgmaster}, Proto => 'tcp')
	} 1 .. 100;
	$answered++ if (get($port{pgmaster}, '/primary'))[0] == 200;
}
close $_ for @idle;
is($answered, 5, 'idle connections do not lock out a check (5 of 5 answered under 100-connection floods)');
close $_ for grep { defined } @slow;
is($primary->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'replication_kit worker'"),
	'1', 'the failover worker runs');
ok((psql_ok($primary, 'CREATE TABLE after_attack (i int); INSERT INTO after_attack VALUES (1)'))[0],
	'the primary still commits: its lease held');

# A replay that lags: /standby with a bound it misses is 503, without one 200.
$pgasync->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
$primary->safe_psql('postgres', 'CREATE TABLE filler AS SELECT g, repeat(\'x\', 500) AS pad FROM generate_series(1, 5000) g');
ok(wait_until(sub { (get($port{pgasyncslave}, '/standby?lag=64kB'))[0] == 503 }, 30),
	'replay paused and 2 MB behind: /standby?lag=64kB is 503');
is((get($port{pgasyncslave}, '/standby'))[0], 200, 'and /standby without a bound still 200');
$pgasync->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
ok(wait_until(sub { (get($port{pgasyncslave}, '/standby?lag=64kB'))[0] == 200 }, 30), 'caught up: 200 again');

# /status under a lock on the registry: it gives up quickly, and /primary
# is not held up.
my $locker = IPC::Run::start(['psql', '-X', '-q', '-d', $primary->connstr('postgres'), '-c',
	'BEGIN; LOCK TABLE rk_nodes IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(30); COMMIT']);
ok(poll_ok($primary, "SELECT count(*) > 0 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
	  . "WHERE c.relname = 'rk_nodes' AND l.mode = 'AccessExclusiveLock' AND l.granted"), 'a session locks rk_nodes');
my $slow;
ok(wait_until(sub {
	my $t = time;
	my ($code) = get($port{pgmaster}, '/status');
	$slow = time - $t;
	$code == 503;
}, 30), '/status under the lock: 503');
ok($slow < 1.5, sprintf('after %.2f s (its lock timeout)', $slow));
$t0 = time;
is((get($port{pgmaster}, '/primary'))[0], 200, '/primary meanwhile: 200');
ok(time - $t0 < 0.5, '/primary is not held up');
$locker->kill_kill;

# Cut the primary off: it loses its lease and says 503 before another
# node says 200; never two nodes at once.
my $both = 0;
partition($_, 'pgmaster') for ($pgslave, $pgasync);
partition($primary, 'pgslave,pgasyncslave');
my $new_p;
ok(wait_until(sub {
	my %c = map { ($_ => (get($port{$_}, '/primary'))[0]) } keys %port;
	$both++ if (grep { $c{$_} == 200 } keys %c) > 1;
	($new_p) = grep { $_ ne 'pgmaster' && $c{$_} == 200 } keys %c;
	$c{pgmaster} == 503 && defined $new_p;
}, 60), 'the cut-off primary says 503, and another node 200');
is($both, 0, 'never two nodes answered 200 at once');
partition($_, undef) for ($primary, $pgslave, $pgasync);
my $np = $new_p eq 'pgslave' ? $pgslave : $pgasync;
ok(wait_follows($primary, $np, 120), 'the old primary rejoins as a standby');
ok(wait_until(sub { (get($port{pgmaster}, '/standby'))[0] == 200 }, 60), 'and its /standby says 200');
$primary = $np;

# Killed primary: /primary moves to the new one.
my @rest = grep { $_ != $primary } ($pgmaster_node, $pgslave, $pgasync);
$primary->stop('immediate');
my $new = wait_for_primary(90, @rest);
ok($new, 'a new primary');
ok(wait_until(sub { (get($port{ $new->name }, '/primary'))[0] == 200 }, 30), $new->name . ': /primary 200');
my ($other) = grep { $_ != $new } @rest;
is((get($port{ $other->name }, '/primary'))[0], 503, $other->name . ': /primary 503');
# Counted once pg_promote() returns in the worker, which may be a moment
# after the node first answers as the primary.
ok(wait_until(sub { (get($port{ $new->name }, '/metrics'))[2] =~ /^replication_kit_failovers_total 1$/m }, 30),
	'failovers_total counts the promotion');

done_testing();
