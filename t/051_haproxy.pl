# HAProxy in front of three nodes, with `option httpchk GET /primary` on
# each node's HTTP endpoint: a client that knows only HAProxy's port writes
# through it, the primary is killed, and the client's writes resume through
# the same port once the new primary holds its lease; nothing acknowledged
# is lost.  The time from the kill to the first write through HAProxy is
# printed (the goal is failover_timeout + 2 s; failover_timeout is 3 s here).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);
use lib 't';
use RKTest;

my $haproxy = `command -v haproxy` || (-x '/usr/sbin/haproxy' ? '/usr/sbin/haproxy' : '');
chomp $haproxy;
ok($haproxy, 'haproxy is installed (tools/prepare installs it)') or BAIL_OUT('no haproxy');

my @http = map { PostgreSQL::Test::Cluster::get_free_port() } 1 .. 3;
my ($primary, $pgslave, $pgasync) = build_cluster('replication_kit.http_address' => "'127.0.0.1:$http[0]'");
for my $i (1, 2)
{
	my $n = ($pgslave, $pgasync)[ $i - 1 ];
	$n->append_conf('postgresql.conf', "replication_kit.http_address = '127.0.0.1:$http[$i]'\n");
	$n->restart;
}
my @all = ($primary, $pgslave, $pgasync);

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $servers = join('', map {
	"    server " . $all[$_]->name . " 127.0.0.1:" . $all[$_]->port . " check port $http[$_]\n"
} 0 .. 2);
open my $fh, '>', "$tmp/haproxy.cfg" or die;
print $fh <<"EOS";
global
    maxconn 200
defaults
    mode tcp
    timeout connect 1s
    timeout client 60s
    timeout server 60s
frontend postgres_write
    bind 127.0.0.1:$port
    default_backend primary
backend primary
    option httpchk GET /primary
    http-check expect status 200
    default-server inter 300ms fall 1 rise 1 on-marked-down shutdown-sessions
$servers
EOS
close $fh;
my ($hout, $herr) = ('', '');
my $h = IPC::Run::start([ $haproxy, '-db', '-f', "$tmp/haproxy.cfg" ], '>', \$hout, '2>', \$herr);

my $connstr = "host=127.0.0.1 port=$port dbname=postgres connect_timeout=2";
ok(wait_until(sub { (psql_ok($primary, 'SELECT 1', connstr => $connstr))[0] }, 30),
	'a client reaches the primary through HAProxy') or diag($herr);
# The standbys were just restarted: the primary commits again once a
# majority has answered it (its lease may have lapsed meanwhile).
ok(poll_ok($primary, 'CREATE TABLE IF NOT EXISTS writes (id int, at timestamptz); SELECT true', 60),
	'the primary commits');
my $w = start_writer($connstr, $tmp, 'writes');
ok(poll_ok($primary, 'SELECT count(*) > 20 FROM writes'), 'the client writes through HAProxy');

my $acked_file = "$tmp/acked_writes";
my $lines = sub { open my $f, '<', $acked_file or return 0; my @l = <$f>; close $f; scalar @l };
my $killed = time;
kill9($primary);
my $new = wait_for_primary(90, $pgslave, $pgasync);
ok($new, 'a new primary: ' . ($new ? $new->name : 'none'));
# Writes acknowledged after the kill: the first one marks the resumption.
my $settled = $lines->();
my $resumed = wait_until(sub { $lines->() > $settled }, 60);
ok(defined $resumed, 'the client writes through the same HAProxy port again');
my $outage = time - $killed;
diag(sprintf('writes through HAProxy resumed %.1f s after the kill (failover_timeout 3 s)', $outage));
ok($outage < 30, 'within a bound far above the goal');
ok(poll_ok($new, 'SELECT count(*) > 0 FROM writes WHERE at > now() - interval \'5 s\''), 'they land on the new primary');
my @acked = stop_writer($w);
my @missing = acked_missing($new, 'writes', @acked);
is(scalar(@missing), 0, scalar(@acked) . ' acknowledged commits, none lost') or diag("missing: @missing");

$h->kill_kill;
done_testing();
