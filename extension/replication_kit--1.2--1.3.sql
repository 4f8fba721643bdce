/* replication_kit--1.2--1.3.sql: the nodes' own credential */

\echo Use "ALTER EXTENSION replication_kit UPDATE TO '1.3'" to load this file. \quit

-- The nodes call each other as a role of their own (replication_kit_node)
-- whose secret no person types and no base backup carries; the streaming
-- password alone no longer reaches the node-to-node functions.  Restart
-- every node on the new library before this update (a node still running
-- the old one would answer rk_peer_state with fewer columns than the new
-- function declares).  After it, run rk_allow_replication() on every node
-- (the node role needs its own pg_hba.conf line) and rk_create_replicator()
-- once more on the primary.

-- The replication password, which every node's worker writes into its
-- password file.
CREATE TABLE @extschema@.rk_credentials (
    role        text PRIMARY KEY,
    password    text NOT NULL CHECK (password !~ '[\r\n]')
);
REVOKE ALL ON TABLE @extschema@.rk_credentials FROM PUBLIC;

-- Default privileges could have granted it to someone: nobody but its owner.
DO $$
DECLARE
    grantee text;
BEGIN
    FOR grantee IN
        SELECT DISTINCT a.grantee::pg_catalog.regrole::text
          FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
         WHERE c.oid = '@extschema@.rk_credentials'::pg_catalog.regclass
           AND a.grantee <> c.relowner AND a.grantee <> 0
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON TABLE @extschema@.rk_credentials FROM %s', grantee);
    END LOOP;
END
$$;

-- A node says whether it lacks the node role's secret ...
DROP FUNCTION @extschema@.rk_peer_state(text, bigint, boolean);
CREATE FUNCTION @extschema@.rk_peer_state(
    caller text, caller_term bigint, caller_is_primary boolean,
    OUT node_name text, OUT in_recovery boolean, OUT timeline integer, OUT lsn pg_lsn,
    OUT term bigint, OUT primary_name text, OUT voted_for text, OUT silence_ms bigint,
    OUT fenced boolean, OUT needs_secret boolean, OUT failover_timeout_ms bigint,
    OUT lease_ms bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'rk_peer_state'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

-- ... and another hands it over.
CREATE FUNCTION @extschema@.rk_peer_secret(secret text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'rk_peer_secret'
LANGUAGE C VOLATILE STRICT
SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION @extschema@.rk_peer_state(text, bigint, boolean),
    @extschema@.rk_peer_secret(text) FROM PUBLIC;

-- The replication role called rk_peer_state under 1.2 and still does until
-- rk_create_replicator() has made the node role: recreating the function
-- must not take that away, or every probe would fail and the primary fence
-- itself.  (rk_create_replicator() takes it away once the node role is in
-- use.)
DO $$
DECLARE
    role text;
BEGIN
    SELECT replication_role INTO role FROM @extschema@.rk_cluster;
    IF role IS NOT NULL AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = role) THEN
        EXECUTE pg_catalog.format(
            'GRANT EXECUTE ON FUNCTION @extschema@.rk_peer_state(text, bigint, boolean) TO %I', role);
    END IF;
END
$$;
