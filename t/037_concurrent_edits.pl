# Kit functions that edit pg_hba.conf read the file, change it and write it
# whole.  Two sessions doing that at once must not lose each other's lines:
# the edits take a lock for the length of their transaction.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use lib 't';
use RKTest;

my $node = new_kit_node('pgmaster');
setup_primary($node);

my $per_session = 20;
my @runs;
for my $s (1, 2)
{
	# From files, so that both run at once without this script feeding them.
	my $file = "${PostgreSQL::Test::Utils::tmp_check}/edits_$s.sql";
	append_to_file($file, join('', map { "SELECT rk_allow_replication('10.$s.0.$_/32');\n" } 1 .. $per_session));
	my ($out, $err) = ('', '');
	push @runs, [ IPC::Run::start(
		[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-f', $file, '-d', $node->connstr('postgres') ],
		'>', \$out, '2>', \$err), \$err ];
}
for my $r (@runs)
{
	ok($r->[0]->finish, 'a session made its edits without an error') or diag(${ $r->[1] });
}

my $hba = slurp_file($node->data_dir . '/pg_hba.conf');
for my $s (1, 2)
{
	my @lost = grep { $hba !~ /\b10\.$s\.0\.$_\/32\b.*\breplication\b|\breplication\b.*\b10\.$s\.0\.$_\/32\b/ }
	  1 .. $per_session;
	is(scalar(@lost), 0, "every address session $s added is in pg_hba.conf")
	  or diag("lost: @lost");
}
my $rules = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_hba_file_rules WHERE address::text LIKE '10.%' AND error IS NULL");
is($rules, 4 * $per_session, 'and the server reads two rules per address');

done_testing();
