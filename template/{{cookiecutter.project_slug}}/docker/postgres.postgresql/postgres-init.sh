#!/bin/bash
# Create the primary's cluster (run once, at build time, as postgres):
#   postgres-init USER PASSWORD DATABASE REPLICATION_PASSWORD
set -euo pipefail
user=$1 password=$2 database=$3 replication_password=$4

initdb --pgdata="$PGDATA" --encoding=UTF8 --locale=C.UTF-8 --username=postgres \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
unix_socket_directories = '/tmp'
CONF
cat >> "$PGDATA/pg_hba.conf" <<CONF
host all all all scram-sha-256
host replication replicator all scram-sha-256
CONF
# Single-user mode: no server to start and stop; one statement a line.
postgres --single -D "$PGDATA" postgres >/dev/null <<SQL
CREATE ROLE "$user" WITH LOGIN PASSWORD '$password'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '$replication_password'
CREATE DATABASE "$database" OWNER "$user" ENCODING 'UTF8'
SQL
