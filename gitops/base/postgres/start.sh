#!/bin/sh
# The PostgreSQL container's command: the image's entrypoint, twice. First with TCP off (Unix socket
# only), so that roles.sql sets up the database roles before any client can connect; then for real.
# On an empty volume the first start also runs initdb and the init scripts, as the image always does.
# Clients that wait for PostgreSQL over TCP (the wait-for-postgres init containers, the probes) so see
# it only once its roles exist and carry the passwords of postgres-secret.
# The first phase listens on socket port 5433: on an empty volume the entrypoint's own temporary
# server (initdb scripts) runs on socket port 5432 first, and roles.sql must not run against it, nor
# must pg_ctl stop it, while the init scripts are still creating the databases.
set -eu

for v in POSTGRES_USER LITEMAAS_BACKEND_PASSWORD LITEMAAS_LITELLM_PASSWORD LITEMAAS_MODEL_READER_PASSWORD LITEMAAS_BACKUP_PASSWORD; do
  eval "val=\${$v:-}"
  [ -n "$val" ] || { echo "postgres: $v is not set (postgres-secret is written by the litemaas-secrets job)" >&2; exit 1; }
done
socket=/var/run/postgresql
setup_port=5433

docker-entrypoint.sh postgres -c listen_addresses='' -p "$setup_port" &
pid=$!
# A stop request while roles are being set up ends both phases.
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 143' TERM INT
until pg_isready -q -h "$socket" -p "$setup_port" -U "$POSTGRES_USER" -d postgres; do
  kill -0 "$pid" 2>/dev/null || { wait "$pid" || true; echo "postgres: the server stopped during start-up" >&2; exit 1; }
  sleep 1
done
echo "postgres: setting up the database roles"
psql --no-psqlrc --quiet -h "$socket" -p "$setup_port" -U "$POSTGRES_USER" -d postgres -f /etc/litemaas/postgres/roles.sql
pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
wait "$pid" || true
trap - TERM INT
exec docker-entrypoint.sh postgres
