#!/usr/bin/env bash
# Installs what the test suite needs on Debian 12, only when it is missing.
# Idempotent and fast (one dpkg-query) when everything is already there.
# Fails loudly (non-zero exit, message on stderr) when something can't be
# installed; never skips silently.
set -euo pipefail

# Debian packages the tests need (Check + pkg-config for the unit tests,
# curl/fetchmail/mpop/getmail6 for the end-to-end tests, procps for pgrep/ps).
PKGS=(check pkg-config curl fetchmail mpop getmail6 procps groff-base man-db stunnel4 openssl clang libclang-rt-14-dev cppcheck clang-tidy valgrind)

missing=()
# One dpkg-query for all packages; a package not known to dpkg is missing.
status=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null || true)
for p in "${PKGS[@]}"; do
    if ! grep -qx "$p installed" <<<"$status"; then
        missing+=("$p")
    fi
done
# python3 may come from elsewhere (pyenv, /usr/local): any python3 will do.
if ! command -v python3 >/dev/null 2>&1; then
    missing+=(python3)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

echo "deps.sh: installing missing packages: ${missing[*]}" >&2

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "deps.sh: ERROR: not root and no sudo; cannot install: ${missing[*]}" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "deps.sh: ERROR: apt-get not found; install by hand: ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1; then
    cat "$log" >&2
    echo "deps.sh: ERROR: apt-get update failed" >&2
    exit 1
fi
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    echo "deps.sh: ERROR: apt-get install failed for: ${missing[*]}" >&2
    exit 1
fi

# Verify: everything must really be there now.
status=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null || true)
still=()
for p in "${PKGS[@]}"; do
    grep -qx "$p installed" <<<"$status" || still+=("$p")
done
command -v python3 >/dev/null 2>&1 || still+=(python3)
for c in curl fetchmail mpop pkg-config pgrep; do
    command -v "$c" >/dev/null 2>&1 || still+=("$c(command)")
done
if [ "${#still[@]}" -ne 0 ]; then
    echo "deps.sh: ERROR: still missing after install: ${still[*]}" >&2
    exit 1
fi
echo "deps.sh: installed: ${missing[*]}" >&2
