/* replication_kit--1.2--1.3.sql: the nodes' own credential */

\echo Use "ALTER EXTENSION replication_kit UPDATE TO '1.3'" to load this file. \quit

-- The nodes call each other as a role of their own (replication_kit_node)
-- whose secret no person types; the streaming password alone no longer
-- reaches the node-to-node functions.  The passwords live here and every
-- node's worker writes them into its password file.  Run
-- rk_create_replicator() once more on the primary after this update: it
-- creates the node role and its secret.
CREATE TABLE @extschema@.rk_credentials (
    role        text PRIMARY KEY,
    password    text NOT NULL CHECK (password !~ '[\r\n]')
);

REVOKE ALL ON TABLE @extschema@.rk_credentials FROM PUBLIC;
