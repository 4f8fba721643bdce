/* replication_kit--1.3--1.4.sql: the replication password for a node that was away */

\echo Use "ALTER EXTENSION replication_kit UPDATE TO '1.4'" to load this file. \quit

-- The replication role's password, for a node that was away when it changed.
CREATE FUNCTION @extschema@.rk_peer_credentials(caller text, OUT role text, OUT password text)
RETURNS record
AS 'MODULE_PATHNAME', 'rk_peer_credentials'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION @extschema@.rk_peer_credentials(text) FROM PUBLIC;

-- The node role calls it, as it calls the other node-to-node functions.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'replication_kit_node') THEN
        GRANT EXECUTE ON FUNCTION @extschema@.rk_peer_credentials(text) TO replication_kit_node;
    END IF;
END
$$;
