#!/bin/sh
# Start PostgreSQL as a primary or as a streaming replica (ROLE), for the acceptance tests only:
# trust authentication on the test network. Statements are logged with the application name
# (`app=%a`), which c2cwsgiutils sets to the request id (C2C_SQL_REQUEST_ID).
set -eu
bin=/usr/lib/postgresql/15/bin
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ "${ROLE:-primary}" = replica ]; then
        until "$bin/pg_basebackup" --host="${PRIMARY_HOST:-db}" --username=postgres --pgdata="$PGDATA" \
                --wal-method=stream --write-recovery-conf; do
            echo "Waiting for the primary ${PRIMARY_HOST:-db}..."
            rm -rf "${PGDATA:?}"/*
            sleep 1
        done
        chmod 0700 "$PGDATA"
    else
        # UTF8: psycopg 3 returns SQL_ASCII text as bytes, which SQLAlchemy cannot parse.
        "$bin/initdb" --auth=trust --username=postgres --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
        echo "host all all 0.0.0.0/0 trust" >> "$PGDATA/pg_hba.conf"
        echo "host replication all 0.0.0.0/0 trust" >> "$PGDATA/pg_hba.conf"
        "$bin/pg_ctl" --wait --silent -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/tmp" start
        psql --host=/tmp --username=postgres --quiet \
            --command="CREATE ROLE app LOGIN PASSWORD 'app'" --command="CREATE DATABASE app OWNER app"
        "$bin/pg_ctl" --wait --silent -D "$PGDATA" stop
    fi
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp -c fsync=off \
    -c wal_level=replica -c hot_standby=on -c max_wal_senders=5 \
    -c log_line_prefix='%m [%p] app=%a ' -c log_statement=all
