#!/usr/bin/env bash
# Runs pushmail locally: the AWS stand-in (moto on 127.0.0.1:4566, or your LocalStack), a demo
# domain and account, an IMAP heartbeat stand-in, the Subscribe URL on 127.0.0.1:8080 and the
# admin API on 127.0.0.1:8081 (with a fresh server-wide admin token, printed).
# Ctrl-C stops everything this script started.
#
#   PUSHMAIL_NO_SEED=1          skip the demo domain/account
#   PUSHMAIL_SUBSCRIBE_ADDR     listen elsewhere (default 127.0.0.1:8080)
#   PUSHMAIL_ADMIN_ADDR         listen elsewhere (default 127.0.0.1:8081)
#   PUSHMAIL_USE_RUNNING_ENDPOINT=1 with AWS_ENDPOINT_URL: use a LocalStack you started
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  infra/local/stack.sh down || true
}
trap cleanup EXIT INT TERM

infra/local/stack.sh up
eval "$(infra/local/stack.sh env)"
export PUSHMAIL_TABLE=${PUSHMAIL_TABLE:-pushmail}
export PUSHMAIL_MAIL_FROM=${PUSHMAIL_MAIL_FROM:-"pushmail <push@pushmail.test>"}
export PUSHMAIL_LOCAL_MODE=1
export PUSHMAIL_SUBSCRIBE_ADDR=${PUSHMAIL_SUBSCRIBE_ADDR:-127.0.0.1:8080}
export PUSHMAIL_ADMIN_ADDR=${PUSHMAIL_ADMIN_ADDR:-127.0.0.1:8081}

cargo build --bin subscribe --bin admin --bin pushmail-dev
bin="$root/target/debug"

if [ "${PUSHMAIL_NO_SEED:-0}" != 1 ]; then
  "$bin/pushmail-dev" seed --domain example.com --secret local-dev-secret \
    --account alice@example.com --password alice-password \
    --subscribe-url "http://$PUSHMAIL_SUBSCRIBE_ADDR/subscribe"
  echo "demo: domain example.com (push secret 'local-dev-secret'), account alice@example.com / alice-password"
fi
# Until the container's IMAP listener runs here, a stand-in reports IMAP alive (spec §2: 503 otherwise).
"$bin/pushmail-dev" heartbeat --every 20 &
pids+=($!)

token=$("$bin/admin" bootstrap local-run)

"$bin/admin" &
pids+=($!)
"$bin/subscribe" &
pids+=($!)
cat <<EOT

Subscribe URL: http://$PUSHMAIL_SUBSCRIBE_ADDR/subscribe
Admin API:     http://$PUSHMAIL_ADMIN_ADDR/admin   (OpenAPI: /admin/openapi.yaml)
A server-wide admin token, shown only now; paste this line into your shell:

    export PUSHMAIL_TOKEN=$token

Ctrl-C stops everything.
EOT
wait -n "${pids[@]}"
