#!/bin/bash
# Start PostgreSQL as the primary or as a streaming replica:
#   postgres-start primary
#   postgres-start replica   (PRIMARY_HOST, default db; REPLICATION_PASSWORD, default replicator)
set -euo pipefail
role=${1:-primary}

if [ "$role" = replica ]; then
    # Replace the cluster of the image with a copy of the primary's; -R writes standby.signal and
    # the connection to the primary, so this server streams its WAL and refuses writes.
    if [ ! -f "$PGDATA/standby.signal" ]; then
        export PGPASSWORD=${REPLICATION_PASSWORD:-replicator}
        rm -rf "$PGDATA"
        until pg_basebackup --host="${PRIMARY_HOST:-db}" --username=replicator --pgdata="$PGDATA" \
            --wal-method=stream --write-recovery-conf --checkpoint=fast; do
            echo "Waiting for the primary ${PRIMARY_HOST:-db}..."
            rm -rf "$PGDATA"
            sleep 1
        done
        chmod 0700 "$PGDATA"
    fi
elif [ "$role" != primary ]; then
    echo "Usage: postgres-start primary|replica" >&2
    exit 2
fi
exec postgres -D "$PGDATA"
