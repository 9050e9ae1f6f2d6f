#!/usr/bin/env bash
# SMTP 250 on one listener process -> `* EXISTS` at an IMAP idler on another, both on one
# DynamoDB table with change hints over SNS and SQS, on the local AWS stand-in (moto). A
# benchmark, not part of the test command; figures in docs/benchmarks.md.
#
#   infra/bench/imap_two_processes.sh [DELIVERIES]    (default 300)
#
# Starts its own moto on free ports (stopped at the end), builds pushmail (release), and polls
# the change log only every 60 s so that every wake-up measured is a hint's.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
runs=${1:-300}
venv=.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r infra/local/requirements.txt -r infra/local/requirements-test.txt
free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export PUSHMAIL_STACK_PORT=$(free_port) PUSHMAIL_STACK_SES_PORT=$(free_port)
pids=()
work=$(mktemp -d)
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  infra/local/stack.sh down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
infra/local/stack.sh up >/dev/null
eval "$(infra/local/stack.sh env)"
cargo build --quiet --release --bin pushmail
export PUSHMAIL_TABLE="bench-$(date +%s)-$$" PUSHMAIL_SES_IDENTITY=pushmail.test PUSHMAIL_MAIL_FROM="pushmail <push@pushmail.test>"
topic=$("$venv/bin/python" infra/local/setup_aws.py | sed -n 's/^hint topic //p')
target/release/pushmail seed --store dynamodb --secret bench-secret --account carol@bench.example \
  --password carol-password --subscribe-url http://127.0.0.1:9/subscribe >/dev/null
smtp=$(free_port) imap_a=$(free_port) imap_b=$(free_port)
flags=(--store dynamodb --mail ses --local-mode true --hint-topic-arn "$topic" --imap-idle-poll-secs 60
  --imap-plaintext-login-on-loopback --submission-addr 127.0.0.1:0 --imaps-addr 127.0.0.1:0
  --subscribe-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0)
RUST_LOG=warn target/release/pushmail --data-dir "$work/a" "${flags[@]}" --smtp-addr "127.0.0.1:$smtp" \
  --imap-addr "127.0.0.1:$imap_a" >"$work/a.log" 2>&1 &
pids+=($!)
RUST_LOG=warn target/release/pushmail --data-dir "$work/b" "${flags[@]}" --smtp-addr 127.0.0.1:0 \
  --imap-addr "127.0.0.1:$imap_b" >"$work/b.log" 2>&1 &
pids+=($!)
for port in "$smtp" "$imap_b"; do
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done
"$venv/bin/python" tests/e2e/two_listeners.py --smtp-port "$smtp" --imap-port-a "$imap_a" \
  --imap-port-b "$imap_b" --user carol@bench.example --password carol-password --latency-runs "$runs"
