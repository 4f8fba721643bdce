# A node that leaves recovery without winning an election is no primary.
# An operator's pg_promote() on a standby (the same holds for a rejoin cut
# short or a restored copy) must not give the cluster a second writable
# node, nor depose the real primary with a term of its own: the promoted
# node acknowledges nothing from the moment it leaves recovery, the primary
# keeps its term and its commits, and the stray node comes back as the
# primary's standby by itself.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY)');
$primary->safe_psql('postgres', 'INSERT INTO writes VALUES (1)');
$_->poll_query_until('postgres', 'SELECT count(*) = 1 FROM writes') or die for ($pgslave, $pgasync);

is($pgasync->safe_psql('postgres', 'SELECT pg_promote()'), 't', 'an operator promotes pgasyncslave by hand');

# From the first commit on, nothing is acknowledged there.
my ($ok, $out, $err) = psql_ok($pgasync, 'SET synchronous_commit = local; INSERT INTO writes VALUES (1000)');
ok(!$ok, 'the promoted standby refuses its first commit');
like($err, qr/cannot commit: this (node is fenced|primary has not heard from a majority)/, 'with the reason');
ok(defined wait_until(sub { slurp_file($pgasync->logfile) =~ /-> fenced on not_elected/ }, 60),
	'its worker fences it: the state table says not_elected');

# The real primary is not deposed: same term, and it commits throughout.
my $deadline = time + 8;
my $refused = 0;
my $commits = 0;
while (time < $deadline)
{
	my ($ok, $out, $err) = psql_ok($primary,
		'SET synchronous_commit = local; INSERT INTO writes SELECT coalesce(max(id), 0) + 1 FROM writes WHERE id < 1000');
	$commits++ if $ok;
	# Deposed or fenced is what must not happen; a lease lapse of a slow round is not this test's matter.
	$refused++ if !$ok && $err =~ /fenced and no longer the primary/;
	usleep(200_000);
}
is($refused, 0, "pgmaster was never fenced in 8 s ($commits commits)");
ok($commits > 0, 'and it committed');
is($primary->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f', 'pgmaster is still the primary');
is($primary->safe_psql('postgres', 'SELECT term FROM rk_cluster'), '1', 'and the term did not change');
is($primary->safe_psql('postgres', "SELECT term FROM rk_status() WHERE is_self"), '1',
	'nobody raised it either');
is($pgslave->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'pgslave is still a standby');

# The stray node rejoins as pgmaster's standby (auto_rejoin), and never kept a row of its own.
ok(wait_follows($pgasync, $primary, 120), 'pgasyncslave is pgmaster\'s standby again');
is($pgasync->safe_psql('postgres', 'SELECT count(*) FROM writes WHERE id = 1000'), '0',
	'the refused row exists nowhere');
like(slurp_file($pgasync->logfile), qr/left recovery without winning an election: it acknowledges nothing/,
	'its log says why it was fenced');

done_testing();
