-- Bad input: each refused call gets a clear error and changes nothing.
-- fingerprint() covers everything the kit could touch: pg_hba.conf,
-- postgresql.auto.conf, the kit's password file, roles, slots and the
-- registry with its credentials.  It must read the same after every refused call.
SET synchronous_commit = local;
\set VERBOSITY default

CREATE FUNCTION fingerprint() RETURNS text LANGUAGE sql AS $$
SELECT md5(pg_read_binary_file(current_setting('hba_file'))::text)
    || md5(pg_read_binary_file('postgresql.auto.conf')::text)
    || md5(pg_read_binary_file('replication_kit.pgpass')::text)
    || md5((SELECT string_agg(rolname || rolreplication || rolsuper || coalesce(rolpassword, ''), ',' ORDER BY rolname) FROM pg_authid))
    || md5((SELECT coalesce(string_agg(slot_name, ',' ORDER BY slot_name), '') FROM pg_replication_slots))
    || md5((SELECT string_agg(n::text, ',' ORDER BY node_id) FROM rk_nodes n))
    || md5((SELECT string_agg(c::text, ',') FROM rk_cluster c))
    || md5((SELECT coalesce(string_agg(c::text, ',' ORDER BY role), '') FROM rk_credentials c))
    || md5(pg_read_binary_file('pgsql_tmp.replication_kit.node_pgpass')::text)
$$;
SELECT fingerprint() AS before \gset
CREATE FUNCTION unchanged() RETURNS boolean LANGUAGE sql
    AS $$ SELECT fingerprint() = current_setting('rk.before') $$;
SELECT set_config('rk.before', :'before', false) IS NOT NULL AS saved;

-- Node names: quotes, spaces, newlines, '#', too long, empty, NULL, upper case.
SELECT rk_add_standby('pg''slave', '127.0.0.1', 35432);
SELECT unchanged();
SELECT rk_add_standby('pg slave', '127.0.0.1', 35432);
SELECT unchanged();
SELECT rk_add_standby(E'pg\nslave', '127.0.0.1', 35432);
SELECT unchanged();
SELECT rk_add_standby('pg#slave', '127.0.0.1', 35432);
SELECT unchanged();
SELECT rk_add_standby(repeat('s', 64), '127.0.0.1', 35432);
SELECT unchanged();
SELECT rk_add_standby('', '127.0.0.1', 35432);
SELECT unchanged();
SELECT rk_add_standby(NULL, '127.0.0.1', 35432);
SELECT unchanged();
SELECT rk_add_standby('PgSlave', '127.0.0.1', 35432);
SELECT unchanged();
SELECT rk_add_standby('1slave', '127.0.0.1', 35432);
SELECT unchanged();
SELECT rk_setup_primary(E'pg\nmaster', '127.0.0.1', 5432);
SELECT unchanged();
-- 63 bytes is the longest name that fits a slot name: accepted, then removed.
SELECT length(rk_add_standby(repeat('s', 63), '127.0.0.1', 35432)) > 0 AS added;
SELECT rk_remove_standby(repeat('s', 63));
SELECT unchanged();

-- Hosts.
SELECT rk_add_standby('pgthird', 'host name', 35432);
SELECT unchanged();
SELECT rk_add_standby('pgthird', 'a,b', 35432);
SELECT unchanged();
SELECT rk_add_standby('pgthird', NULL, 35432);
SELECT unchanged();

-- Ports: 0, 70000, NULL, negative.
SELECT rk_add_standby('pgthird', '127.0.0.1', 0);
SELECT unchanged();
SELECT rk_add_standby('pgthird', '127.0.0.1', 70000);
SELECT unchanged();
SELECT rk_add_standby('pgthird', '127.0.0.1', NULL);
SELECT unchanged();
SELECT rk_add_standby('pgthird', '127.0.0.1', -1);
SELECT unchanged();
SELECT rk_setup_primary('pgmaster', '127.0.0.1', 70000);
SELECT unchanged();

-- Duplicates: a node name, a host and port, a leftover slot of the same name.
SELECT rk_add_standby('pgslave', '127.0.0.1', 35432);
SELECT unchanged();
SELECT rk_add_standby('pgthird', '127.0.0.1', 15432);
SELECT unchanged();
SELECT rk_add_standby('pgmaster', '127.0.0.1', 35432);
SELECT unchanged();
SELECT 'leftover' FROM pg_create_physical_replication_slot('leftover');
SELECT set_config('rk.before', fingerprint(), false) IS NOT NULL AS saved;
SELECT rk_add_standby('leftover', '127.0.0.1', 35432);
SELECT unchanged();
SELECT pg_drop_replication_slot('leftover');
SELECT set_config('rk.before', fingerprint(), false) IS NOT NULL AS saved;
-- A second primary under another name.
SELECT rk_setup_primary('othermaster', '127.0.0.1', 5432);
SELECT unchanged();
SELECT rk_setup_primary('pgslave', '127.0.0.1', 15432);
SELECT unchanged();

-- Removing an unknown node, the primary, or a sync standby the policy needs.
SELECT rk_remove_standby('nosuchnode');
SELECT unchanged();
SELECT rk_remove_standby(NULL);
SELECT unchanged();
SELECT rk_remove_standby('pgmaster');
SELECT unchanged();
SELECT rk_set_sync('ANY', 2);
SELECT set_config('rk.before', fingerprint(), false) IS NOT NULL AS saved;
SELECT rk_remove_standby('pgslave');
SELECT unchanged();
SELECT rk_set_sync('FIRST', 1);
SELECT set_config('rk.before', fingerprint(), false) IS NOT NULL AS saved;

-- Sync counts: negative, more than the sync standbys, NULL; bad methods.
SELECT rk_set_sync('FIRST', -1);
SELECT unchanged();
SELECT rk_set_sync('FIRST', 3);
SELECT unchanged();
SELECT rk_set_sync('ANY', NULL);
SELECT unchanged();
SELECT rk_set_sync('SOME', 1);
SELECT unchanged();
SELECT rk_set_sync(NULL, 1);
SELECT unchanged();
SELECT rk_set_sync('FIRST 1 (x)', 1);
SELECT unchanged();

-- Addresses: bad masks, keywords, smuggled methods and lines, host bits.
SELECT rk_allow_replication('10.0.0.0/33');
SELECT unchanged();
SELECT rk_allow_replication('all');
SELECT unchanged();
SELECT rk_allow_replication('samenet');
SELECT unchanged();
SELECT rk_allow_replication('0.0.0.0/0 trust');
SELECT unchanged();
SELECT rk_allow_replication(E'127.0.0.1\nhost all all 0.0.0.0/0 trust');
SELECT unchanged();
SELECT rk_allow_replication('10.0.0.1/8');
SELECT unchanged();
SELECT rk_allow_replication('::1/129');
SELECT unchanged();
SELECT rk_allow_replication('300.1.1.1');
SELECT unchanged();
SELECT rk_allow_replication('10.0.0.0/');
SELECT unchanged();
SELECT rk_allow_replication('');
SELECT unchanged();
SELECT rk_allow_replication(NULL);
SELECT unchanged();
SELECT rk_revoke_replication('10.0.0.0/33');
SELECT unchanged();

-- Methods and roles for pg_hba.conf.
SELECT rk_allow_replication('10.2.0.0/16', 'replicator', 'trust');
SELECT unchanged();
SELECT rk_allow_replication('10.2.0.0/16', 'replicator', 'password');
SELECT unchanged();
SELECT rk_allow_replication('10.2.0.0/16', 'replicator', 'scram-sha-256 # x');
SELECT unchanged();
SELECT rk_allow_replication('10.2.0.0/16', 'replicator', NULL);
SELECT unchanged();
SELECT rk_allow_replication('10.2.0.0/16', 'all');
SELECT unchanged();
SELECT rk_allow_replication('10.2.0.0/16', 'nosuchrole');
SELECT unchanged();
SELECT rk_allow_replication('10.2.0.0/16', 'replicator user');
SELECT unchanged();
-- trust only when the caller insists; then it is revoked again.
SELECT rk_allow_replication('10.2.0.0/16', 'replicator', 'trust', force => true);
SELECT rk_revoke_replication('10.2.0.0/16');
SELECT unchanged();

-- The replication role: never a superuser or an ordinary role, never empty.
CREATE ROLE alice LOGIN;
SELECT set_config('rk.before', fingerprint(), false) IS NOT NULL AS saved;
SELECT rk_create_replicator(current_user, 'pw');
SELECT unchanged();
SELECT rk_create_replicator('alice', 'pw');
SELECT unchanged();
SELECT rk_create_replicator('replicator', '');
SELECT unchanged();
SELECT rk_create_replicator('replicator', NULL);
SELECT unchanged();
SELECT rk_create_replicator('replicator', E'pw\nmore');
SELECT unchanged();
SELECT rk_create_replicator('pg_replicator', 'pw');
SELECT unchanged();
SELECT rk_create_replicator('Replicator', 'pw');
SELECT unchanged();
-- A password check that fails inside the kit's CREATE ROLE: the error
-- shows neither the password nor its SCRAM verifier (no CONTEXT line with
-- the statement), and nothing changes.
LOAD 'passwordcheck';
SELECT rk_create_replicator('newrepl', 'newrepl');
SELECT unchanged();

-- Not inside a transaction block: a ROLLBACK could not undo a file rewrite.
BEGIN;
SELECT rk_add_standby('pgthird', '127.0.0.1', 35432);
ROLLBACK;
SELECT unchanged();
BEGIN;
SELECT rk_allow_replication('10.3.0.0/16');
ROLLBACK;
SELECT unchanged();

-- A non-superuser: refused by the privileges, and by the C check too.
SET ROLE alice;
SELECT rk_add_standby('pgthird', '127.0.0.1', 35432);
SELECT rk_set_sync('FIRST', 0);
SELECT * FROM rk_status();
SELECT * FROM rk_peer_state('pgslave', 1, false);
SELECT rk_failover();
SELECT rk_switchover('pgslave');
SELECT rk_rejoin();
RESET ROLE;
GRANT EXECUTE ON FUNCTION rk_add_standby(text, text, integer, boolean, text),
                          rk_allow_replication(text, text, text, boolean),
                          rk_local_node() TO alice;
SET ROLE alice;
SELECT rk_add_standby('pgthird', '127.0.0.1', 35432);
SELECT rk_allow_replication('10.3.0.0/16');
SELECT * FROM rk_local_node();
RESET ROLE;
REVOKE EXECUTE ON FUNCTION rk_add_standby(text, text, integer, boolean, text),
                           rk_allow_replication(text, text, text, boolean),
                           rk_local_node() FROM alice;
DROP ROLE alice;
SELECT set_config('rk.before', fingerprint(), false) IS NOT NULL AS saved;

-- Failover, switchover and rejoin: unknown or invalid targets, the wrong role.
SELECT rk_failover('nosuchnode');
SELECT unchanged();
SELECT rk_failover(E'pg\nslave');
SELECT unchanged();
SELECT rk_switchover('nosuchnode');
SELECT unchanged();
SELECT rk_failover('pgmaster');
SELECT unchanged();
SELECT rk_failover('pgmaster', dry_run => true);
SELECT unchanged();
SELECT rk_rejoin();
SELECT unchanged();
-- No standby runs here, so there is none to pick.
SELECT rk_failover();
SELECT unchanged();
SELECT rk_switchover();
SELECT unchanged();

-- Connection strings: only 'write' or 'read', names that fit a connection string.
SELECT rk_conninfo('both');
SELECT rk_conninfo(NULL);
SELECT rk_conninfo('write', 'my db');
SELECT rk_conninfo('write', 'db', E'x\nhost=evil');

-- The node-to-node functions check what they are given, and a primary
-- never gives a vote.
SELECT * FROM rk_request_vote('pgslave', 100, 1, '0/0', 'bogus');
SELECT granted, reason FROM rk_request_vote('pgslave', 100, 1, '0/0', 'auto');
SELECT * FROM rk_request_vote(NULL, 100, 1, '0/0', 'auto');
SELECT l.term, p.voted_for FROM rk_local_node() l, rk_peer_state('pgslave', 1, false) p;
SELECT unchanged();

-- pg_hba.conf keywords are no hosts: written as an address they would let
-- any address in.
SELECT rk_add_standby('kw_all', 'all', 5433);
SELECT rk_add_standby('kw_samenet', 'SameNet', 5433);
SELECT rk_add_standby('kw_samehost', 'samehost', 5433);
SELECT unchanged();
-- Digits and dots only: an address to some readers, a name to others.
SELECT rk_add_standby('num_host', '1234', 5433);
SELECT rk_add_standby('short_ip', '10.1', 5433);
SELECT unchanged();

-- The kit's database is written into pg_hba.conf and connection strings:
-- keywords, lists and white space are refused (ALTER SYSTEM checks).
ALTER SYSTEM SET replication_kit.database = 'all';
ALTER SYSTEM SET replication_kit.database = 'sameuser';
ALTER SYSTEM SET replication_kit.database = 'a,b';
ALTER SYSTEM SET replication_kit.database = 'my db';
ALTER SYSTEM SET replication_kit.database = '@file';
SELECT unchanged();

-- A name another node sends is written into the node state file: a name
-- that breaks the node-name rule (a newline would inject a line of its
-- own: a peer, a role, a term) is refused and the file stays as it was.
SELECT md5(pg_read_binary_file('replication_kit.state')::text) AS state_before \gset
SELECT * FROM rk_peer_state(E'evil\npeer = attacker 10.0.0.9 5432', 1, true);
SELECT * FROM rk_peer_state('Evil Node', 1, true);
SELECT * FROM rk_request_vote(E'x\nrole = primary', 100, 1, '0/0', 'auto');
SELECT * FROM rk_peer_fence(E'x\nterm = 99', 100, false);
SELECT md5(pg_read_binary_file('replication_kit.state')::text) = :'state_before' AS state_unchanged;
SELECT unchanged();

-- Terms from peers are whole numbers from 1 (0 for a node that is not a
-- primary and has seen none) to 2^48: a negative bigint would become a term
-- near 2^64 and wrap every later one.  A candidate's timeline is at least
-- 1: a negative one would be "more WAL" than any voter's.
SELECT md5(pg_read_binary_file('replication_kit.state')::text) AS state_before \gset
SELECT * FROM rk_peer_state('pgslave', -1, true);
SELECT * FROM rk_peer_state('pgslave', 0, true);
SELECT * FROM rk_peer_state('pgslave', 281474976710657, true);
SELECT * FROM rk_peer_state('pgslave', NULL, false);
SELECT * FROM rk_request_vote('pgslave', -1, 1, '0/0', 'force');
SELECT * FROM rk_request_vote('pgslave', 9, -1, 'FF/0', 'auto');
SELECT * FROM rk_request_vote('pgslave', 9, 0, 'FF/0', 'auto');
SELECT * FROM rk_peer_fence('pgslave', 0, false);
SELECT * FROM rk_peer_fence('pgslave', -5, true);
SELECT md5(pg_read_binary_file('replication_kit.state')::text) = :'state_before' AS state_unchanged;
SELECT unchanged();

-- The streaming password is no key to the node-to-node functions: a
-- replication role is refused even where someone granted it EXECUTE.
CREATE ROLE mallory LOGIN REPLICATION;
GRANT EXECUTE ON FUNCTION rk_peer_state(text, bigint, boolean),
                          rk_request_vote(text, bigint, integer, pg_lsn, text),
                          rk_peer_fence(text, bigint, boolean),
                          rk_peer_failover(boolean, boolean, boolean),
                          rk_peer_secret(text),
                          rk_peer_credentials(text) TO mallory;
SET ROLE mallory;
SELECT * FROM rk_peer_state('pgslave', 7, true);
SELECT * FROM rk_peer_state('nosuchnode', 7, true);
SELECT * FROM rk_request_vote('pgslave', 9, 1, 'FF/0', 'force');
SELECT * FROM rk_peer_fence('pgslave', 9, false);
SELECT * FROM rk_peer_failover(true, false, false);
SELECT rk_peer_secret(repeat('ab', 32));
SELECT * FROM rk_peer_credentials('pgslave');
RESET ROLE;
REVOKE ALL ON FUNCTION rk_peer_state(text, bigint, boolean),
                       rk_request_vote(text, bigint, integer, pg_lsn, text),
                       rk_peer_fence(text, bigint, boolean),
                       rk_peer_failover(boolean, boolean, boolean),
                       rk_peer_secret(text),
                       rk_peer_credentials(text) FROM mallory;
DROP ROLE mallory;
-- A call from a node of another cluster (another initdb) is refused,
-- whoever makes it.
-- (Terse: the detail names this instance's system identifier.)
SET replication_kit.peer_system_identifier = '1234567890';
\set VERBOSITY terse
SELECT * FROM rk_peer_state('pgslave', 7, true);
SELECT * FROM rk_request_vote('pgslave', 9, 1, 'FF/0', 'auto');
\set VERBOSITY default
RESET replication_kit.peer_system_identifier;
-- Whoever SETs ROLE to the node role is not the node role ...
SET ROLE replication_kit_node;
SELECT * FROM rk_peer_state('pgslave', 7, true);
RESET ROLE;
-- ... the node role must say which cluster it belongs to ...
SET SESSION AUTHORIZATION replication_kit_node;
SELECT * FROM rk_peer_state('pgslave', 7, true);
RESET SESSION AUTHORIZATION;
-- ... and even then is refused unless the call names a registered node
-- and comes from that node's registered address; here, a local socket.
SELECT set_config('replication_kit.peer_system_identifier', system_identifier::text, false) IS NOT NULL AS set
  FROM pg_control_system();
SET SESSION AUTHORIZATION replication_kit_node;
SELECT * FROM rk_peer_state('pgslave', 7, true);
SELECT * FROM rk_peer_state('nosuchnode', 7, true);
SELECT * FROM rk_request_vote('pgslave', 9, 1, 'FF/0', 'force');
SELECT * FROM rk_peer_fence('pgslave', 9, false);
SELECT * FROM rk_peer_failover(true, false, false);
SELECT rk_peer_secret(repeat('ab', 32));
SELECT * FROM rk_peer_credentials('pgslave');
SELECT * FROM rk_peer_credentials('nosuchnode');
RESET SESSION AUTHORIZATION;
RESET replication_kit.peer_system_identifier;
-- A superuser may call it, but only the real secret is kept.
SELECT rk_peer_secret(repeat('ab', 32));
SELECT rk_peer_secret('not hex');
SELECT md5(pg_read_binary_file('replication_kit.state')::text) = :'state_before' AS state_unchanged;
SELECT unchanged();

-- The node role is the kit's: not a replication role's name, and not
-- handed out when someone gave it more power.
SELECT md5(pg_read_binary_file('replication_kit.pgpass')::text) AS passfile_before \gset
SELECT rk_create_replicator('replication_kit_node', 'pw');
ALTER ROLE replication_kit_node CREATEDB;
SELECT rk_create_replicator('replicator', 'pw');
ALTER ROLE replication_kit_node NOCREATEDB;
-- ... nor one that another role can SET ROLE to.
CREATE ROLE mallory;
GRANT replication_kit_node TO mallory;
SELECT rk_create_replicator('replicator', 'pw');
REVOKE replication_kit_node FROM mallory;
DROP ROLE mallory;
SELECT md5(pg_read_binary_file('replication_kit.pgpass')::text) = :'passfile_before' AS passfile_unchanged;
SELECT unchanged();

-- The same nodes are registered as after the setup test.
SELECT node_name, role, sync FROM rk_nodes ORDER BY node_id;
SELECT unchanged();

-- Pauses and priorities.
SELECT rk_pause(E'two\nlines');
SELECT unchanged();
SELECT rk_pause(repeat('x', 201));
SELECT unchanged();
SELECT rk_set_node('nosuchnode', priority => 5);
SELECT unchanged();
SELECT rk_set_node(E'pg\nslave', priority => 5);
SELECT unchanged();
SELECT rk_set_node('pgslave');
SELECT unchanged();
SELECT rk_set_node('pgslave', priority => -1);
SELECT unchanged();
SELECT rk_set_node('pgslave', priority => 1001);
SELECT unchanged();
SELECT rk_set_node(NULL, priority => 1);
SELECT unchanged();
-- A pause this node never had cannot be ended by another node.
SELECT rk_peer_resume('pgslave', 999999999);
SELECT rk_peer_resume('pgslave', -1);
SELECT md5(pg_read_binary_file('replication_kit.state')::text) = :'state_before' AS state_unchanged;
SELECT unchanged();
-- The node role may hand on a resume, but not pause, resume or set priorities.
SET SESSION AUTHORIZATION replication_kit_node;
SELECT rk_pause('x');
SELECT rk_resume();
SELECT rk_set_node('pgslave', priority => 0);
RESET SESSION AUTHORIZATION;
SELECT unchanged();

-- A function or operator planted in a schema on the caller's search path
-- is never called by the kit's superuser code: rk_set_sync once built
-- synchronous_standby_names with text || integer, which this one catches.
CREATE TABLE public.planted_calls (what text);
CREATE FUNCTION public.planted_concat(text, integer) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO public.planted_calls VALUES ('text || integer'); SELECT $1 || $2::text $$;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = integer, FUNCTION = public.planted_concat);
SELECT 'planted ' || 1 AS planted_operator_works;
SET search_path = public, pg_catalog;
SELECT rk_set_sync('ANY', 1);
SELECT rk_set_sync('FIRST', 1);
SELECT node_name, role FROM rk_status() ORDER BY node_name;
RESET search_path;
SELECT count(*) AS planted_calls FROM public.planted_calls;
DROP OPERATOR public.|| (text, integer);
DROP FUNCTION public.planted_concat(text, integer);
DROP TABLE public.planted_calls;
