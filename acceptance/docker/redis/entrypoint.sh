#!/bin/sh
# ROLE=master | replica | sentinel. Every server announces its compose host name (ANNOUNCE), so
# Sentinel hands out names that survive a container restart (a new IP address).
# `entrypoint.sh ping` is the health check of the role.
set -eu
role="${ROLE:-master}"
port=6379
if [ "$role" = sentinel ]; then port=26379; fi
if [ "${1:-}" = ping ]; then
    exec redis-cli -p "$port" ping
fi
common="--port 6379 --dir /tmp --protected-mode no --save '' --appendonly no --replica-announce-ip ${ANNOUNCE:-$(hostname)}"
case "$role" in
    master)
        eval exec redis-server "$common" ;;
    replica)
        eval exec redis-server "$common" --replicaof "${MASTER_HOST:-redis}" 6379 ;;
    sentinel)
        # Sentinel rewrites its configuration file: it must be writable.
        cat > /tmp/sentinel.conf <<CONF
port 26379
protected-mode no
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip ${ANNOUNCE:-$(hostname)}
sentinel monitor ${SERVICE_NAME:-mymaster} ${MASTER_HOST:-redis} 6379 1
sentinel down-after-milliseconds ${SERVICE_NAME:-mymaster} 2000
sentinel failover-timeout ${SERVICE_NAME:-mymaster} 10000
sentinel parallel-syncs ${SERVICE_NAME:-mymaster} 1
CONF
        exec redis-sentinel /tmp/sentinel.conf ;;
    *)
        echo "Unknown ROLE: $role" >&2
        exit 2 ;;
esac
