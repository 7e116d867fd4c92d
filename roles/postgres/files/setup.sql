-- Catalyst (roles/postgres): the agent's role and database, idempotently.
-- Run as the postgres superuser: psql -X -At -v ON_ERROR_STOP=1 -v role=R -v database=D -v timezone=TZ
--   -v createdb=true|false -v check=0|1 -f setup.sql
-- It builds only the statements that are needed from the catalog, then runs them (\gexec, one command tag
-- printed per statement) or, with check=1, prints them. No output at all means nothing needed doing.
SELECT stmt FROM (
    SELECT 1 AS n, format('CREATE ROLE %I LOGIN %s', :'role',
                          CASE WHEN :'createdb'::boolean THEN 'CREATEDB' ELSE 'NOCREATEDB' END) AS stmt
     WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')
    UNION ALL
    SELECT 2, format('ALTER ROLE %I LOGIN %s', :'role',
                     CASE WHEN :'createdb'::boolean THEN 'CREATEDB' ELSE 'NOCREATEDB' END)
      FROM pg_roles
     WHERE rolname = :'role' AND (NOT rolcanlogin OR rolcreatedb <> :'createdb'::boolean)
    UNION ALL
    SELECT 3, format('ALTER ROLE %I SET timezone = %L', :'role', :'timezone')
     WHERE NOT EXISTS (
        SELECT FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) AS c(setting)
         WHERE r.rolname = :'role' AND s.setdatabase = 0 AND lower(c.setting) = lower('timezone=' || :'timezone'))
    UNION ALL
    SELECT 4, format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'database', :'role', 'UTF8')
     WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database')
    UNION ALL
    SELECT 5, format('ALTER DATABASE %I OWNER TO %I', :'database', :'role')
      FROM pg_database
     WHERE datname = :'database' AND pg_get_userbyid(datdba) <> :'role'
) AS todo
ORDER BY n
\if :check
\g
\else
\gexec
\endif
