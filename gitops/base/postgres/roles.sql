-- One database role per component, run by start.sh as the superuser (POSTGRES_USER) over the Unix
-- socket at every start of PostgreSQL, before it accepts TCP connections. Idempotent: a second run
-- changes nothing but the passwords, which it sets from the environment every time.
--
--   litemaas_backend       owns litemaas_db and every object in it (the backend creates its schema;
--                          the job alters users.oauth_id as its owner)
--   litemaas_litellm       owns litellm_db and every object in it (LiteLLM's Prisma migrations)
--   litemaas_model_reader  may read LiteLLM_ProxyModelTable in litellm_db and nothing else (the
--                          backend's LITELLM_DATABASE_URL cross-check)
--   litemaas_backup        reads everything (pg_read_all_data), writes nothing (the backup CronJob)
--
-- None is superuser or may create roles or databases. Nobody else may connect to either database:
-- CONNECT is revoked from PUBLIC. The superuser stays for this script and for operators.
--
-- An install from before these roles (everything owned by the superuser) is moved on its first start
-- with this script: ownership of the databases and of the objects in their public schema passes to the
-- component's role. No row is copied or rewritten: ALTER ... OWNER only changes the catalog.
\set ON_ERROR_STOP on
\getenv backend_password LITEMAAS_BACKEND_PASSWORD
\getenv litellm_password LITEMAAS_LITELLM_PASSWORD
\getenv reader_password LITEMAAS_MODEL_READER_PASSWORD
\getenv backup_password LITEMAAS_BACKUP_PASSWORD

SELECT format('CREATE ROLE %I', r) FROM unnest(ARRAY['litemaas_backend', 'litemaas_litellm', 'litemaas_model_reader', 'litemaas_backup']) AS r
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r)\gexec

-- INHERIT where the role owns a database: it creates in the public schema through pg_database_owner.
ALTER ROLE litemaas_backend WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD :'backend_password';
ALTER ROLE litemaas_litellm WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD :'litellm_password';
ALTER ROLE litemaas_model_reader WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT PASSWORD :'reader_password';
-- INHERIT: it reads through its membership of pg_read_all_data.
ALTER ROLE litemaas_backup WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD :'backup_password';
GRANT pg_read_all_data TO litemaas_backup;

-- POSTGRES_DB created litemaas_db; litellm_db came from the init script until now.
SELECT 'CREATE DATABASE litemaas_db OWNER litemaas_backend' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'litemaas_db')\gexec
SELECT 'CREATE DATABASE litellm_db OWNER litemaas_litellm' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'litellm_db')\gexec
ALTER DATABASE litemaas_db OWNER TO litemaas_backend;
ALTER DATABASE litellm_db OWNER TO litemaas_litellm;
REVOKE CONNECT, TEMPORARY ON DATABASE litemaas_db FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE litellm_db FROM PUBLIC;
GRANT CONNECT ON DATABASE litemaas_db TO litemaas_backup;
GRANT CONNECT ON DATABASE litellm_db TO litemaas_backup, litemaas_model_reader;

-- litemaas_db: what a superuser owns in the public schema passes to the backend's role. Sequences
-- owned by a column follow their table; extension members stay with the extension.
\connect litemaas_db
\set owner litemaas_backend
\ir move-ownership.sql

\connect litellm_db
\set owner litemaas_litellm
\ir move-ownership.sql

-- The model reader sees LiteLLM_ProxyModelTable only. LiteLLM creates that table on its first start,
-- after this script: an event trigger grants the read as soon as it exists (it runs as the role that
-- creates the table, its owner). The hook lives outside the public schema, which Prisma manages.
CREATE SCHEMA IF NOT EXISTS litemaas_hooks;
REVOKE ALL ON SCHEMA litemaas_hooks FROM PUBLIC;
CREATE OR REPLACE FUNCTION litemaas_hooks.grant_model_reader() RETURNS event_trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('public."LiteLLM_ProxyModelTable"') IS NOT NULL THEN
        GRANT SELECT ON public."LiteLLM_ProxyModelTable" TO litemaas_model_reader;
    END IF;
END
$$;
SELECT 'CREATE EVENT TRIGGER litemaas_grant_model_reader ON ddl_command_end WHEN TAG IN (''CREATE TABLE'', ''ALTER TABLE'') EXECUTE FUNCTION litemaas_hooks.grant_model_reader()'
WHERE NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'litemaas_grant_model_reader')\gexec
SELECT 'GRANT SELECT ON public."LiteLLM_ProxyModelTable" TO litemaas_model_reader' WHERE to_regclass('public."LiteLLM_ProxyModelTable"') IS NOT NULL\gexec
