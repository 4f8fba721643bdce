# The primary dies for good and an operator runs pg_promote() on a standby
# before the kit's failover, as by hand before the kit.  That promotion won
# no election: the node is fenced and tries to rejoin the dead primary,
# which never answers.  It waited for ever as a read-only standby on the
# timeline of its own promotion, and the other standby waited for it: that
# timeline was the newest, so it looked like the node with the most WAL
# (model findings F1 and F3).  No primary, for ever.
#
# Now a node on the timeline of its own unelected promotion counts at the
# point where that timeline forked off (what it holds of the elected
# primary's WAL), and once the primary its rejoin waits for has not
# answered for failover_timeout it takes part in the election.  Here both
# standbys hold the same WAL, so either may be elected (the other standby
# may even be first, before the promoted node gives its rejoin up); t/043
# promotes one that lacks the last commits.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

# Which of `@nodes` takes a commit through the kit's commit guard?
sub writer_among
{
	my (@nodes) = @_;
	my $writer;
	wait_until(sub {
		for my $n (@nodes)
		{
			my ($ok) = psql_ok($n, "SET synchronous_commit = local; INSERT INTO probe VALUES (-1)");
			if ($ok) { $writer = $n; return 1; }
		}
		return 0;
	}, 120);
	return $writer;
}

sub remarks
{
	return join('', map {
		my ($ok, $out) = psql_ok($_, "SELECT coalesce(remark, '') FROM rk_status() WHERE is_self");
		$_->name . ': ' . $out . "\n" } @_);
}

# pgslave, the synchronous standby, has everything; the operator promotes
# it by hand.
my ($primary, $pgslave, $pgasync) = build_cluster();
$primary->safe_psql('postgres', 'CREATE TABLE probe (v int)');
$primary->safe_psql('postgres', 'INSERT INTO probe SELECT generate_series(1, 100)');
$_->poll_query_until('postgres', 'SELECT count(*) = 100 FROM probe') or die for ($pgslave, $pgasync);
kill9($primary);
is($pgslave->safe_psql('postgres', 'SELECT pg_promote()'), 't', 'the operator promotes pgslave by hand');

my $writer = writer_among($pgslave, $pgasync);
ok($writer, 'a primary is elected and takes commits') or diag(remarks($pgslave, $pgasync));
like(slurp_file($pgslave->logfile), qr/promoted without an election onto timeline 2 \(forked off 1 at/,
	'the log says pgslave counts at its fork point');
SKIP:
{
	skip 'no primary', 3 unless $writer;
	my $other = $writer == $pgslave ? $pgasync : $pgslave;
	note('elected: ' . $writer->name);
	is($writer->safe_psql('postgres', 'SELECT count(*) FROM probe WHERE v > 0'), '100',
		'every acknowledged commit is on it');
	ok(wait_follows($other, $writer, 180), 'the other node follows it') or diag(remarks($other));
	$other->_update_pid(1);
	is($other->safe_psql('postgres', 'SELECT count(*) FROM probe WHERE v > 0'), '100',
		'and has every acknowledged commit');
}

done_testing();
