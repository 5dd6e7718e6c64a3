#!/bin/bash
# Start a streaming replica of the `db` service: copy its data once (pg_basebackup writes the
# standby configuration with -R), then run postgres, read-only.
set -euo pipefail
export PGDATA=/var/lib/postgresql/data
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_basebackup --host=db --username=replicator --pgdata="$PGDATA" --wal-method=stream -R; do
        echo "Waiting for the primary..."
        rm -rf "${PGDATA:?}"/*
        sleep 1
    done
    chmod 0700 "$PGDATA"
fi
exec postgres
