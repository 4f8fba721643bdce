# An operator demotes the primary by hand: standby.signal and a restart.
# The asynchronous standby is down, so the synchronous one needs the demoted
# node's vote to be elected.  Before, the demoted node kept the term it had
# won and refused every vote ("won term 1 and is being promoted") for as
# long as no newer term named a primary to it, so no primary was ever
# elected (review finding M5a).  Now it gives up its win when it starts as
# a standby, votes, and follows the new primary with every commit.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster_async();
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY)');
$primary->safe_psql('postgres', 'INSERT INTO writes SELECT generate_series(1, 100)');
$pgslave->poll_query_until('postgres', 'SELECT count(*) = 100 FROM writes') or die;

$pgasync->stop('fast');
$primary->stop('fast');
open my $signal, '>', $primary->data_dir . '/standby.signal' or die;
close $signal;
my $log_offset = -s $primary->logfile;
$primary->start;
ok(poll_ok($primary, 'SELECT pg_is_in_recovery()', 30), 'pgmaster, demoted by hand, runs as a standby');
like(substr(slurp_file($primary->logfile), $log_offset), qr/this node starts as a standby \(standby\.signal\): the win of term 1 in its state file is given up/,
	'and gives up the term it won');

my $new = wait_for_primary(120, $primary, $pgslave);
is($new ? $new->name : 'none', 'pgslave', 'pgslave is elected with the demoted node\'s vote')
  or diag(join("\n", map { $_->name . ': ' . $_->safe_psql('postgres', 'SELECT remark FROM rk_status() WHERE is_self') }
	  ($primary, $pgslave)));
SKIP:
{
	skip 'no primary', 3 unless $new && $new == $pgslave;
	is($pgslave->safe_psql('postgres', 'SELECT count(*) FROM writes'), '100', 'every acknowledged commit is there');
	ok(wait_follows($primary, $pgslave, 120), 'pgmaster follows it');
	$pgasync->start;
	ok(wait_follows($pgasync, $pgslave, 120), 'pgasyncslave, started again, follows it too');
}

done_testing();
