/* replication_kit--1.4--1.5.sql: rk_peer_state also says the timeline a node is on */

\echo Use "ALTER EXTENSION replication_kit UPDATE TO '1.5'" to load this file. \quit

-- A standby on the timeline of its own unelected promotion reports, as its
-- timeline and LSN, where that timeline forked off (the winner rule counts
-- it there); own_timeline is the timeline it is on, which the next
-- primary's promotion must not reuse.
DROP FUNCTION @extschema@.rk_peer_state(text, bigint, boolean);

CREATE FUNCTION @extschema@.rk_peer_state(
    caller text, caller_term bigint, caller_is_primary boolean,
    OUT node_name text, OUT in_recovery boolean, OUT timeline integer, OUT lsn pg_lsn,
    OUT term bigint, OUT primary_name text, OUT voted_for text, OUT silence_ms bigint,
    OUT fenced boolean, OUT needs_secret boolean, OUT failover_timeout_ms bigint,
    OUT lease_ms bigint, OUT own_timeline integer)
RETURNS record
AS 'MODULE_PATHNAME', 'rk_peer_state'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION @extschema@.rk_peer_state(text, bigint, boolean) FROM PUBLIC;

-- The node role calls it, as it calls the other node-to-node functions.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'replication_kit_node') THEN
        GRANT EXECUTE ON FUNCTION @extschema@.rk_peer_state(text, bigint, boolean) TO replication_kit_node;
    END IF;
END
$$;
