# The primary and one standby die together: the survivor cannot prove that
# no acknowledged commit is lost (no majority, no synchronous quorum), so it
# does not promote itself, keeps serving reads, says why, and promotes only
# when an operator forces it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
$primary->safe_psql('postgres', 'CREATE TABLE users (id int PRIMARY KEY, name text)');
$primary->safe_psql('postgres', "INSERT INTO users SELECT g, 'user ' || g FROM generate_series(1, 50) g");
$pgslave->poll_query_until('postgres', 'SELECT count(*) = 50 FROM users') or die;
$pgslave->poll_query_until('postgres', "SELECT count(*) = 2 FROM rk_peer_view() WHERE reachable") or die;

kill9($primary);
kill9($pgasync);

# The first reason may still be the WAL the receiver got just before the
# kill ("still receives WAL from its primary"); the one that stays is the
# missing majority.
my $remark;
wait_until(sub {
	$remark = $pgslave->safe_psql('postgres', 'SELECT remark FROM rk_status() WHERE is_self');
	$remark =~ /no majority/;
}, 60);
like($remark, qr/no automatic failover: no majority: 1 of 3 nodes reachable, 2 needed/, "rk_status says why: $remark");
ok(!defined wait_until(sub { $pgslave->safe_psql('postgres', 'SELECT pg_is_in_recovery()') eq 'f' }, 8),
	'no automatic promotion without a majority');
is($pgslave->safe_psql('postgres', 'SELECT name FROM users WHERE id = 42'), 'user 42',
	'reads keep working on the survivor');

my $dry = $pgslave->safe_psql('postgres', 'SELECT rk_failover(force => true, dry_run => true)');
like($dry, qr/forced failover would promote without it.*may be lost/, "dry run warns: $dry");

my ($stdout, $stderr);
$pgslave->psql('postgres', 'SELECT rk_failover(force => true)', stdout => \$stdout, stderr => \$stderr);
like($stdout, qr/WARNING: forced without a majority.*pgslave promoted in term 2/, "forced: $stdout");
like($stderr, qr/WARNING:  forced failover to "pgslave" may have lost acknowledged commits/,
	'a loud warning');
$pgslave->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die;
# The stored policy still asks for one synchronous standby, and none is
# left: an asynchronous write shows the new primary is writable; a
# synchronous one waits for a standby, as the policy says.
$pgslave->safe_psql('postgres', "SET synchronous_commit = local; INSERT INTO users VALUES (51, 'after the forced failover')");
pass('the survivor accepts writes after the forced failover');
my ($ok, $o, $e) = psql_ok($pgslave, 'SELECT count(*) FROM users WHERE id = 51');
is($o, '1', 'and keeps them (it holds its lease alone now)');
is($pgslave->safe_psql('postgres', 'SELECT count(*) FROM rk_nodes WHERE joined_at IS NOT NULL'), '1',
	'the nodes that did not answer left the quorum until they stream again');
is($pgslave->safe_psql('postgres', 'SELECT term FROM rk_cluster'), '2', 'term 2');

done_testing();
