#!/usr/bin/env bash
# Builds Dovecot's imaptest from ../shared/tools/imaptest into target/imaptest (once) and prints
# the binary's path. imaptest links Dovecot's libdovecot (Debian's dovecot-core), which the
# tool's own build.sh does not install: installed here when missing, with the Dovecot service
# kept from starting (only the library is wanted).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
tools=${IMAPTEST_TOOLS:-$root/../shared/tools/imaptest}
[ -d "$tools" ] || { echo "imaptest's sources are not at $tools" >&2; exit 1; }
if [ ! -e /usr/lib/dovecot/libdovecot.so.0 ]; then
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  # A policy-rc.d that says no (exit 101) keeps the package from starting Dovecot.
  policy=/usr/sbin/policy-rc.d made_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    made_policy=1
  fi
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends dovecot-core >&2
  [ -z "$made_policy" ] || $sudo rm -f "$policy"
fi
"$tools/build.sh" target/imaptest | tail -n1
