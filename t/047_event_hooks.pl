# replication_kit.event_command and NOTIFY replication_kit: the primary is
# killed; the new primary runs the command for "promoted" (slow: 2.5 s,
# which must not hold the failover up), the other standby for "following"
# (it hangs, and is killed after event_timeout), each with the event, the
# node, its role, the term and the new primary as arguments.  The exit
# status and output go to the log and rk_events, and a client that LISTENs
# through the multi-host string (reconnecting as a pooler would) gets the
# new primary's events as JSON.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use IPC::Run;
use lib 't';
use RKTest;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $hook = "$tmp/hook.sh";
open my $fh, '>', $hook or die;
print $fh <<"EOS";
#!/bin/sh
# The arguments land in a file of their own per node; quotes show each one.
printf '[%s] ' "\$@" >> '$tmp/events.'"\$2"
echo >> '$tmp/events.'"\$2"
case "\$1" in
promoted) touch '$tmp/promoted.running'; sleep 2.5; rm '$tmp/promoted.running'
  echo "moved the address to \$2"; exit 7 ;;
following) [ "\$4" = 2 ] && echo \$\$ \$(ps -o sid= -p \$\$) > '$tmp/following.pid'; sleep 600 ;;
esac
exit 0
EOS
close $fh;
chmod 0755, $hook;

my ($primary, $pgslave, $pgasync) = build_cluster(
	'replication_kit.event_command' => "'$hook'",
	'replication_kit.event_timeout' => "'3s'");
my @all = ($primary, $pgslave, $pgasync);
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY, at timestamptz)');
$_->poll_query_until('postgres', "SELECT to_regclass('writes') IS NOT NULL") for ($pgslave, $pgasync);
is($pgslave->safe_psql('postgres', 'SHOW replication_kit.event_command'), $hook,
	'the clones carry event_command');
$primary->safe_psql('postgres', "CREATE ROLE plain LOGIN");
my ($ok, $out, $err) = psql_ok($primary, 'SHOW replication_kit.event_command', extra_params => ['-U', 'plain']);
ok(!$ok && $err =~ /permission denied|must be superuser|privileges/, 'an ordinary role cannot read it')
  or diag($err);

# A listener as a pooler runs it: LISTEN on whichever node takes writes,
# again after each disconnect.
my $connstr = write_connstr(@all) =~ s/connect_timeout=2/connect_timeout=1/r;
my $listen_out = "$tmp/listen.out";
my $listener = IPC::Run::start(['bash', '-c', <<"EOS"]);
while [ ! -f '$tmp/stop_listen' ]; do
  printf 'LISTEN replication_kit;\\nSELECT pg_sleep(1);\\n' | cat - <(for i in \$(seq 60); do echo 'SELECT pg_sleep(0.5);'; [ -f '$tmp/stop_listen' ] && break; done 2>/dev/null) \\
    | psql -X -q -d "$connstr" >> '$listen_out' 2>/dev/null
  sleep 0.1
done
EOS
my $w = start_writer(write_connstr(@all), $tmp);
$primary->poll_query_until('postgres', 'SELECT count(*) > 20 FROM writes') or die;

my $killed_at = time;
kill9($primary);
my $new = wait_for_primary(60, $pgslave, $pgasync);
ok(defined $new, 'a standby took over') or die;
my $other = $new == $pgslave ? $pgasync : $pgslave;
my ($n, $o) = ($new->name, $other->name);
diag(sprintf('%s answers as the primary %.1f s after the kill', $n, time - $killed_at));

ok(wait_until(sub { -f "$tmp/events.$n" && slurp_file("$tmp/events.$n") =~ /\[promoted\] \[$n\] \[primary\] \[2\] \[$n\]/ }, 30),
	"$n ran event_command with: promoted $n primary 2 $n");
ok(wait_until(sub { -f "$tmp/events.$o" && slurp_file("$tmp/events.$o") =~ /\[following\] \[$o\] \[standby\] \[2\] \[$n\]/ }, 30),
	"$o ran event_command with: following $o standby 2 $n");

# The slow command holds nothing up: while it runs, the new primary's
# worker goes on probing (the other node's last contact moves on).
ok(wait_until(sub { -f "$tmp/promoted.running" }, 30), "${n}'s command for promoted runs");
my $contact = "SELECT last_contact FROM rk_peer_view() WHERE node_name = '$o'";
my $c0 = $new->safe_psql('postgres', $contact);
ok(wait_until(sub {
	-f "$tmp/promoted.running"
	  && $new->safe_psql('postgres', "SELECT ($contact) > '$c0'::timestamptz") eq 't' }, 10),
	"${n}'s worker probes $o again while its command still runs");
my $before = $new->safe_psql('postgres', 'SELECT count(*) FROM writes');
$new->poll_query_until('postgres', "SELECT count(*) > $before + 10 FROM writes")
  or die 'writes did not resume on the new primary';

ok(poll_ok($new, "SELECT EXISTS (SELECT 1 FROM rk_events WHERE kind = 'hook' AND node_name = '$n' "
	  . "AND detail ~ '^promoted in term 2: event_command exited with status 7 after [0-9]+ ms; output: moved the address to $n')", 30),
	'its exit status and output are in rk_events');
ok(wait_until(sub { slurp_file($other->logfile) =~ /following in term 2: event_command killed after event_timeout \(3000 ms\)/ }, 30),
	"$o killed its hanging command after event_timeout");
my ($hung, $session) = split ' ', slurp_file("$tmp/following.pid");
ok($hung =~ /^\d+$/ && wait_until(sub { !kill(0, $hung) }, 10), "the killed command ($hung) is gone");
ok($session =~ /^\d+$/ && wait_until(sub { system('pgrep', '-s', $session) != 0 }, 10),
	"and so is what it started (session $session)");

ok(wait_until(sub {
	-f $listen_out && slurp_file($listen_out) =~ /"replication_kit" with payload "\{"kind": "hook", "node": "$n", "term": 2, "primary": "$n", "at": "[^"]+", "detail": "promoted in term 2: event_command exited with status 7/ }, 30),
	'a client LISTENing on the new primary got the hook\'s event as JSON')
  or diag(-f $listen_out ? slurp_file($listen_out) : 'no listener output');

my @acked = stop_writer($w);
my @missing = acked_missing($new, 'writes', @acked);
is(scalar(@missing), 0, scalar(@acked) . ' acknowledged commits, none missing');
open my $stop, '>', "$tmp/stop_listen" or die;
close $stop;
$listener->finish;

done_testing();
