/* replication_kit--1.1--1.2.sql: every function runs with a pinned search_path */

\echo Use "ALTER EXTENSION replication_kit UPDATE TO '1.2'" to load this file. \quit

-- The C functions run SPI queries as the superuser who calls them (or as
-- the kit's own authority): with the caller's search_path, a function or
-- an operator planted in a schema on that path by a role with CREATE there
-- would be called.  Each now runs with search_path = pg_catalog, pg_temp,
-- as rk_status() already did.

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
               AND d.objid = p.oid AND d.deptype = 'e'
         WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
           AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'replication_kit')
           AND p.prolang = (SELECT oid FROM pg_catalog.pg_language WHERE lanname = 'c')
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
    END LOOP;
END
$$;
