#!/usr/bin/env bash
# The admin console and the user page in a real browser: installs what the test needs (Debian's
# chromium; Playwright from PyPI into .venv-browser, pointed at that chromium, so it downloads no
# browser; axe-core from the npm registry into .tools/axe), then runs tests/e2e/browser.py with
# the arguments given, keeping its screenshots in .local/screens.
#
#   infra/local/browser.sh --admin http://127.0.0.1:8081 --subscribe http://127.0.0.1:8080/subscribe \
#       --smtp-port 2525 --token "$PUSHMAIL_TOKEN"
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
axe_version=4.14.1

if ! command -v chromium >/dev/null 2>&1; then
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium >/dev/null
fi
venv=.venv-browser
if [ ! -x "$venv/bin/python" ] || ! cmp -s infra/local/requirements-browser.txt "$venv/.pushmail-requirements"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r infra/local/requirements-browser.txt
  cp infra/local/requirements-browser.txt "$venv/.pushmail-requirements"
fi
axe=.tools/axe/axe-core-$axe_version/axe.min.js
if [ ! -f "$axe" ]; then
  mkdir -p ".tools/axe/axe-core-$axe_version"
  (cd .tools/axe && npm pack --silent "axe-core@$axe_version" >/dev/null \
    && tar -xzf "axe-core-$axe_version.tgz" -C "axe-core-$axe_version" --strip-components=1 package/axe.min.js \
    && rm "axe-core-$axe_version.tgz")
fi
shots=.local/screens
rm -rf "$shots" && mkdir -p "$shots"
exec "$venv/bin/python" tests/e2e/browser.py --axe "$axe" --shots "$shots" --chromium "$(command -v chromium)" "$@"
