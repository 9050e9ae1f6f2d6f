#!/usr/bin/env bash
# The local AWS stack: moto server on 127.0.0.1:4566 (LocalStack's port) with pushmail's table and
# SES identity. Installs what it needs into .venv on first use.
#
#   infra/local/stack.sh up      start it (if not running) and create the table and identity
#   infra/local/stack.sh down    stop the moto server this script started, and nothing else
#   infra/local/stack.sh env     print the environment variables that point pushmail at it
#
# PUSHMAIL_STACK_PORT picks another port (the tests use 4567, so a local run can stay up).
# PUSHMAIL_STACK_SES_PORT, if set, runs SES on a second moto server of its own (the tests do: the
# emulator's record of sent mail is read from /moto-api/data.json, which lists every item of
# every service, and stays quick only where there are no DynamoDB items).
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

ses_port=${PUSHMAIL_STACK_SES_PORT:-}
if [ -n "$ses_port" ]; then
  export AWS_ENDPOINT_URL_SES="http://$host:$ses_port"
fi

listening() {  # listening URL
  curl -fsS -o /dev/null "$1/moto-api/" 2>/dev/null || curl -fsS -o /dev/null "$1/_localstack/health" 2>/dev/null
}

start_moto() {  # start_moto PORT NAME
  local url="http://$host:$1" pidfile="$state/$2.pid"
  listening "$url" && return 0
  "$venv/bin/python" "$root/infra/local/moto_serial.py" "$host" "$1" >"$state/$2.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 100); do
    listening "$url" && break
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { cat "$state/$2.log" >&2; echo "moto server failed to start" >&2; exit 1; }
    sleep 0.1
  done
  listening "$url" || { echo "moto server did not answer on $url" >&2; exit 1; }
  echo "moto server ($2) started on $url (pid $(cat "$pidfile"))"
}

up() {
  ensure_venv
  mkdir -p "$state"
  if [ "${PUSHMAIL_USE_RUNNING_ENDPOINT:-0}" != 1 ]; then
    start_moto "$port" moto
    if [ -n "$ses_port" ]; then start_moto "$ses_port" moto-ses; fi
  fi
  "$venv/bin/python" "$root/infra/local/setup_aws.py"
}

stop_pidfile() {
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "moto server (pid $pid) stopped"
  fi
  rm -f "$pidfile"
}

down() {
  stop_pidfile "$state/moto.pid"
  stop_pidfile "$state/moto-ses.pid"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env)
    echo "export AWS_ENDPOINT_URL=$endpoint AWS_REGION=$AWS_REGION AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
    if [ -n "$ses_port" ]; then echo "export AWS_ENDPOINT_URL_SES=$AWS_ENDPOINT_URL_SES"; fi
    ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
