#!/usr/bin/env bash
# Debian packages crmsync's local runs need beyond Python:
#   postgresql                 PostgreSQL's server (initdb, pg_ctl), for the throwaway databases of
#                              make demo / airflow / bench / test; only when no initdb is found where
#                              crmsync.testing.postgres looks: PATH, then /usr/lib/postgresql/*/bin
#   chromium, chromium-driver  the browser test (tests/e2e/test_browser.py) drives Debian's Chromium
#   fonts-liberation           so its screenshots have readable text
#   docker-compose             the docker-compose.yaml test
#   redis-server               the Celery broker of the multi-worker test (tests/e2e/test_celery_workers.py);
#                              only when no redis-server is on PATH (crmsync.testing.stack looks there)
#
#   bash scripts/system-deps.sh            everything `make test` needs
#   bash scripts/system-deps.sh postgres   only PostgreSQL's server (make demo, airflow, bench)
#
# Idempotent: installs only what is missing (one `apt-get update`, then one install);
# nothing to do means no network at all. Not root and something missing: says what to
# install and exits 0, so what needs it fails and names it.
set -euo pipefail

case "${1:-all}" in
    all) WANT_TEST_PACKAGES=1 ;;
    postgres) WANT_TEST_PACKAGES=0 ;;
    *) echo "usage: $0 [all|postgres]" >&2; exit 2 ;;
esac
TEST_PACKAGES=(chromium chromium-driver fonts-liberation docker-compose)

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# The same search as crmsync.testing.postgres: both on PATH, or both in a Debian server's bin.
has_postgres_server() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        return 0
    fi
    local bin
    for bin in /usr/lib/postgresql/*/bin; do
        if [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ]; then
            return 0
        fi
    done
    return 1
}

missing=()
# `postgresql` is Debian's default server version (15 on Debian 12); it also creates the
# `postgres` user the throwaway servers run as when we are root.
has_postgres_server || missing+=(postgresql)
if [ "$WANT_TEST_PACKAGES" = 1 ]; then
    for package in "${TEST_PACKAGES[@]}"; do
        installed "$package" || missing+=("$package")
    done
    # Debian's package, or any other Redis whose server is on PATH.
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: not a Debian system; install these yourself: ${missing[*]}" >&2
    echo "system-deps: (postgresql: any PostgreSQL server whose initdb and pg_ctl are on PATH;" \
         "redis-server: any Redis server on PATH)" >&2
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing Debian packages: ${missing[*]}" >&2
    echo "system-deps: install them with: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    echo "system-deps: until then what needs them fails." >&2
    exit 0
fi

echo "system-deps: installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system-deps: done."
