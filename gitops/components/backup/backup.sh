#!/bin/sh
# Dumps the LiteMaaS databases (litemaas_db: users, subscriptions, API keys; litellm_db: LiteLLM's
# models, virtual keys and spend) into a new timestamped directory under BACKUP_DIR, then keeps the
# newest BACKUP_KEEP backups and deletes older ones.
#
# Run by the CronJob postgres-backup (gitops/components/backup) and, unchanged, by the tests.
# POSIX sh on purpose: the postgres alpine image has busybox sh, not bash.
#
# Environment:
#   PGHOST, PGPORT, PGUSER, PGPASSWORD  where and as whom to connect (libpq reads them itself, so
#                                       the password never appears on a command line)
#   BACKUP_DIR                          the backup volume (default /backups)
#   BACKUP_KEEP                         how many backups to keep (default 7)
#
# Layout of one backup, restored by `litemaas-ops restore --from BACKUP_DIR/<stamp>`:
#   <stamp>/litemaas_db.dump  <stamp>/litellm_db.dump   pg_dump --format=custom
#   <stamp>/SHA256SUMS                                   checksums of the dumps
#   <stamp>/backup-info                                  when, which server, which pg_dump
set -eu

BACKUP_DIR=${BACKUP_DIR:-/backups}
BACKUP_KEEP=${BACKUP_KEEP:-7}
DATABASES="litemaas_db litellm_db"

log() { echo "backup: $*"; }
fail() { echo "backup: ERROR: $*" >&2; exit 1; }

case $BACKUP_KEEP in
  '' | *[!0-9]*) fail "BACKUP_KEEP must be a whole number of backups to keep, got '$BACKUP_KEEP'" ;;
esac
[ "$BACKUP_KEEP" -ge 1 ] || fail "BACKUP_KEEP must be at least 1, got $BACKUP_KEEP"
[ -n "${PGHOST:-}" ] || fail "PGHOST is not set"
[ -n "${PGUSER:-}" ] || fail "PGUSER is not set"
[ -d "$BACKUP_DIR" ] && [ -w "$BACKUP_DIR" ] || fail "$BACKUP_DIR is not a writable directory (is the volume mounted?)"

# A run killed half-way (activeDeadlineSeconds, node loss) leaves a .partial-* directory. Partial
# dumps are never kept: only a complete backup is renamed to its final, timestamped name. The
# CronJob's concurrencyPolicy Forbid makes sure no other run is writing one right now.
for stale in "$BACKUP_DIR"/.partial-*; do
  [ -e "$stale" ] || continue
  log "removing the unfinished backup $(basename "$stale")"
  rm -rf "$stale"
done

# UTC, sortable by name. Two runs within the same second (only in tests) wait for the next second
# rather than invent a second naming scheme.
stamp=$(date -u +%Y%m%dT%H%M%SZ)
while [ -e "$BACKUP_DIR/$stamp" ]; do
  sleep 1
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
done
work="$BACKUP_DIR/.partial-$stamp"
mkdir "$work"
trap 'rm -rf "$work"' EXIT

server=$(psql --no-password --dbname=litemaas_db --tuples-only --no-align --command='SHOW server_version') ||
  fail "cannot connect to PostgreSQL at $PGHOST:${PGPORT:-5432} as $PGUSER"
log "PostgreSQL $server at $PGHOST:${PGPORT:-5432}, $(pg_dump --version)"

for db in $DATABASES; do
  # Custom format: compressed, and pg_restore can restore it selectively. Each database is dumped
  # from one consistent snapshot; the two databases are dumped one after the other.
  pg_dump --no-password --format=custom --dbname="$db" --file="$work/$db.dump" ||
    fail "pg_dump of $db failed; the previous backups are left as they were"
  # Read the archive's table of contents back: catches a truncated file before it is kept.
  pg_restore --list "$work/$db.dump" >/dev/null || fail "the dump of $db is not readable"
  log "$db: $(du -k "$work/$db.dump" | cut -f1) KiB"
done

(cd "$work" && sha256sum ./*.dump >SHA256SUMS)
{
  echo "created=$stamp"
  echo "server_version=$server"
  echo "pg_dump=$(pg_dump --version)"
  echo "databases=$DATABASES"
} >"$work/backup-info"

mv "$work" "$BACKUP_DIR/$stamp"
trap - EXIT
log "backup $stamp complete"

# Retention: only directories named like a backup count (the volume's lost+found and anything an
# operator put there are left alone). Names sort by time; keep the newest BACKUP_KEEP.
ls -1 "$BACKUP_DIR" | grep -E '^[0-9]{8}T[0-9]{6}Z$' | sort -r | tail -n "+$((BACKUP_KEEP + 1))" |
  while read -r old; do
    rm -rf "${BACKUP_DIR:?}/$old"
    log "removed the old backup $old (keeping $BACKUP_KEEP)"
  done
log "backups kept: $(ls -1 "$BACKUP_DIR" | grep -cE '^[0-9]{8}T[0-9]{6}Z$')"
