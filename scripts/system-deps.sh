#!/usr/bin/env bash
# Debian packages `make test` needs beyond Python and PostgreSQL:
#   chromium, chromium-driver  the browser test (tests/e2e/test_browser.py) drives Debian's Chromium
#   fonts-liberation           so its screenshots have readable text
#   docker-compose             the docker-compose.yaml test
# Idempotent: installs only what is missing (one `apt-get update`, then one install);
# nothing to do means no network at all. Not root and something missing: says what to
# install and exits 0, so the tests that need it fail and name it.
set -euo pipefail

PACKAGES=(chromium chromium-driver fonts-liberation docker-compose)

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for package in "${PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: not a Debian system; install these yourself: ${missing[*]}" >&2
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing Debian packages: ${missing[*]}" >&2
    echo "system-deps: install them with: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    echo "system-deps: until then the tests that need them fail." >&2
    exit 0
fi

echo "system-deps: installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system-deps: done."
