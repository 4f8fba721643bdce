# A commit is acknowledged only once the synchronous standbys have it.  When
# a client cancels the wait for them (or a statement_timeout ends it),
# PostgreSQL acknowledges the commit with a warning although no standby
# holds it, and a failover then loses it.  The kit withholds that
# acknowledgement: the client's connection is closed instead (the server
# log says why), so it knows the outcome is unknown.  Here the primary's WAL senders are
# frozen, a commit waits, the client cancels it, and the primary dies.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
$primary->safe_psql('postgres', 'CREATE TABLE probe (v text)');
$primary->safe_psql('postgres', "INSERT INTO probe VALUES ('before')");
$primary->safe_psql('postgres', 'CREATE UNLOGGED TABLE scratch (v text)');
$_->poll_query_until('postgres', "SELECT count(*) = 1 FROM probe") or die for ($pgslave, $pgasync);

# No WAL leaves the primary from now on.
my @senders = split /\n/, $primary->safe_psql('postgres', 'SELECT pid FROM pg_stat_replication');
is(scalar @senders, 2, 'the primary has two WAL senders');
kill 'STOP', @senders;

# A commit that wrote no WAL (an unlogged table) waits for no standby and is
# acknowledged as usual: the guard does not take it for a cut-short wait.
my ($ok, $sout, $serr) = psql_ok($primary, "INSERT INTO scratch VALUES ('no WAL')");
ok($ok, 'a commit into an unlogged table is acknowledged while no WAL leaves the primary') or diag($serr);

# A client commits 'x' and waits for pgslave; it cancels the wait.
my ($out, $err) = ('', '');
my $client = IPC::Run::start(
	[ 'psql', '-XAt', '-d', $primary->connstr('postgres'), '-c', "INSERT INTO probe VALUES ('x')" ],
	'>', \$out, '2>', \$err);
ok($primary->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'"),
	'the commit waits for the synchronous standby');
$primary->safe_psql('postgres',
	"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
my $acked = ($client->finish && $out =~ /INSERT 0 1/);
like($err, qr/canceling wait for synchronous replication/, 'the client was told its wait was cancelled');
ok(!$acked, 'the cancelled commit is not acknowledged as a success')
  or diag("psql stdout: $out\nstderr: $err");
like($err, qr/server closed the connection|connection to server was lost/, 'the connection is closed instead');
like(slurp_file($primary->logfile), qr/the commit at \S+ is not acknowledged: the wait for the synchronous standbys ended/,
	'the server log says why');

# The primary dies before any standby got 'x'.
kill9($primary);
my $new = wait_for_primary(120, $pgslave, $pgasync);
ok($new, 'a standby is promoted');
my $has_x = $new ? $new->safe_psql('postgres', "SELECT count(*) FROM probe WHERE v = 'x'") : 0;
ok(!$acked || $has_x == 1, 'no acknowledged commit is lost');
is($new ? $new->safe_psql('postgres', "SELECT count(*) FROM probe WHERE v = 'before'") : 0, '1',
	'the commit acknowledged earlier is there');

done_testing();
