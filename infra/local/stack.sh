#!/usr/bin/env bash
# The local AWS stack: moto server on 127.0.0.1:4566 (LocalStack's port) with pushmail's table and
# SES identity. Installs what it needs into .venv on first use.
#
#   infra/local/stack.sh up      start it (if not running) and create the table and identity
#   infra/local/stack.sh down    stop the moto server this script started, and nothing else
#   infra/local/stack.sh env     print the environment variables that point pushmail at it
#
# PUSHMAIL_STACK_PORT picks another port (the tests use 4567, so a local run can stay up).
# With a real LocalStack already listening, `PUSHMAIL_USE_RUNNING_ENDPOINT=1 stack.sh up` only
# creates the table and identity on it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.venv"
host=127.0.0.1
port=${PUSHMAIL_STACK_PORT:-4566}
# One state folder per port, so the test run's stack and a local run's never stop each other.
state="$root/.local/stack-$port"
endpoint="http://$host:$port"

export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_REGION=${AWS_REGION:-us-east-1}
export AWS_ENDPOINT_URL="$endpoint"

ensure_venv() {
  local stamp="$venv/.pushmail-requirements"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  if ! cmp -s "$root/infra/local/requirements.txt" "$stamp" 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/infra/local/requirements.txt"
    cp "$root/infra/local/requirements.txt" "$stamp"
  fi
}

listening() { curl -fsS -o /dev/null "$endpoint/moto-api/" 2>/dev/null || curl -fsS -o /dev/null "$endpoint/_localstack/health" 2>/dev/null; }

up() {
  ensure_venv
  mkdir -p "$state"
  if [ "${PUSHMAIL_USE_RUNNING_ENDPOINT:-0}" != 1 ] && ! listening; then
    "$venv/bin/moto_server" -H "$host" -p "$port" >"$state/moto.log" 2>&1 &
    echo $! >"$state/moto.pid"
    for _ in $(seq 1 100); do
      listening && break
      kill -0 "$(cat "$state/moto.pid")" 2>/dev/null || { cat "$state/moto.log" >&2; echo "moto server failed to start" >&2; exit 1; }
      sleep 0.1
    done
    listening || { echo "moto server did not answer on $endpoint" >&2; exit 1; }
    echo "moto server started on $endpoint (pid $(cat "$state/moto.pid"))"
  fi
  "$venv/bin/python" "$root/infra/local/setup_aws.py"
}

down() {
  if [ -f "$state/moto.pid" ]; then
    local pid
    pid=$(cat "$state/moto.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      echo "moto server (pid $pid) stopped"
    fi
    rm -f "$state/moto.pid"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env)
    echo "export AWS_ENDPOINT_URL=$endpoint AWS_REGION=$AWS_REGION AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
    ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
