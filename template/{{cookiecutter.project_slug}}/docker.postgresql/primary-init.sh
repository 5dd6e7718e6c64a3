#!/bin/bash
# Run once by the postgres image when the primary's data directory is created: a replication user
# and the pg_hba.conf line that lets the replica stream the WAL.
set -euo pipefail
psql --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" \
    --command="CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD 'replicator'"
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
