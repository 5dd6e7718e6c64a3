#!/usr/bin/env bash
# Build the `debian:bookworm-slim` base image locally with debootstrap, for machines that cannot
# pull from a container registry. The result is a minimal Debian bookworm root file system
# imported as an image with the same name, so that `FROM debian:bookworm-slim` builds unchanged
# here and on machines that pull the official image.
#
# Usage: build-debian-base.sh [IMAGE]   (default: debian:bookworm-slim)
# Environment: DOCKER (docker CLI, default: docker), DEBIAN_MIRROR (default: the first `URIs:`
# of /etc/apt/sources.list.d/debian.sources, else http://deb.debian.org/debian),
# FORCE=1 rebuilds even when the image exists.
set -euo pipefail

image=${1:-debian:bookworm-slim}
docker=${DOCKER:-docker}

if [[ ${FORCE:-0} != 1 ]] && $docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image already exists: nothing to do (FORCE=1 rebuilds it)"
    exit 0
fi

mirror=${DEBIAN_MIRROR:-}
if [[ -z $mirror && -r /etc/apt/sources.list.d/debian.sources ]]; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [[ -z $mirror && -r /etc/apt/sources.list ]]; then
    mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "debootstrap is missing: apt-get install -y debootstrap" >&2
    exit 1
fi

rootfs=$(mktemp -d /tmp/debian-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

echo "Building $image with debootstrap from $mirror (about 30 s)"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -20 "$rootfs.log" >&2
    exit 1
}
rm -f "$rootfs.log"
# Make it look like the official slim image: no apt caches, no docs, no man pages.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CONF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CONF
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CONF'
APT::Install-Recommends "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" \
    >"$rootfs/etc/apt/sources.list"

tar -C "$rootfs" -c . | $docker import --change 'CMD ["bash"]' - "$image" >/dev/null
echo "Built $image ($($docker image inspect --format '{{.Size}}' "$image") bytes)"
