#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, the unit and integration tests against a real
# DynamoDB/SES endpoint (moto on 127.0.0.1:4567, started and stopped here), then the built
# Subscribe URL driven end to end by a spec-following push service and the README's curl example.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export PUSHMAIL_STACK_PORT=${PUSHMAIL_STACK_PORT:-4567}

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  infra/local/stack.sh down >/dev/null || true
}
trap cleanup EXIT INT TERM

echo "== static checks"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== local AWS stack"
infra/local/stack.sh up
eval "$(infra/local/stack.sh env)"

echo "== cargo test"
cargo test --workspace

echo "== end to end: the built Subscribe URL and a spec-following push service"
cargo build --quiet --bin subscribe --bin pushmail-dev
export PUSHMAIL_TABLE="e2e-$(date +%s)-$$"
export PUSHMAIL_SES_IDENTITY=pushmail.test PUSHMAIL_MAIL_FROM="pushmail <push@pushmail.test>"
export PUSHMAIL_LOCAL_MODE=1
.venv/bin/python infra/local/setup_aws.py >/dev/null
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PUSHMAIL_SUBSCRIBE_ADDR="127.0.0.1:$port"
url="http://127.0.0.1:$port/subscribe"
target/debug/pushmail-dev seed --domain e2e.example --secret e2e-secret \
  --account carol@e2e.example --password carol-password --subscribe-url "$url"
target/debug/pushmail-dev seed --domain e2e.example --secret e2e-secret \
  --account alice@e2e.example --password alice-password --subscribe-url "$url"
target/debug/pushmail-dev heartbeat
target/debug/subscribe >"$root/.local/e2e-subscribe.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.1
done
.venv/bin/python tests/e2e/push_service.py --url "$url" --secret e2e-secret \
  --email carol@e2e.example --password carol-password --moto "$AWS_ENDPOINT_URL"

echo "== the README's signed curl example"
example=$(sed -n '/<!-- example:subscribe -->/,/<!-- end -->/p' README.md | sed '1,2d;$d' | sed '$d')
[ -n "$example" ] || { echo "README.md has no example:subscribe block" >&2; exit 1; }
example=${example//http:\/\/127.0.0.1:8080/http://127.0.0.1:$port}
example=${example//example.com/e2e.example}
example=${example//local-dev-secret/e2e-secret}
answer=$(bash -c "$example")
echo "$answer"
case "$answer" in
  *'"status":"subscribed"'*) echo "1 passed, 0 failed" ;;
  *) echo "0 passed, 1 failed"; exit 1 ;;
esac
