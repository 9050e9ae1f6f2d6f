#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, the unit and integration tests against a real
# DynamoDB/SES endpoint (moto on 127.0.0.1:4567, and SES on 4568, started and stopped here) and
# again on the embedded store, then the pushmail process on DynamoDB driven end to end by a
# spec-following push service and schemathesis, and the README's examples against README
# command 1 (the embedded store).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export PUSHMAIL_STACK_PORT=${PUSHMAIL_STACK_PORT:-4567} PUSHMAIL_STACK_SES_PORT=${PUSHMAIL_STACK_SES_PORT:-4568}
venv="$root/.venv"

# A hung step fails the run, named, long before CI's own limit instead of using it all up
# (cargo test also names a hung test: "has been running for over 60 seconds").
bounded() {
  local limit=$1; shift
  local status=0
  timeout -k 10 "$limit" "$@" || status=$?
  if [ "$status" -eq 124 ]; then echo "TIMED OUT after ${limit} s: $*" >&2; fi
  return "$status"
}

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  infra/local/stack.sh down >/dev/null || true
  rm -rf "${local_dir:-}" "${sink_dir:-}"
}
trap cleanup EXIT INT TERM

echo "== static checks"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== deploy template: sam validate --lint, cfn-lint, table and listener-task drift"
if [ ! -x .venv-sam/bin/sam ] || ! cmp -s infra/requirements-sam.txt .venv-sam/.pushmail-requirements; then
  python3 -m venv .venv-sam
  .venv-sam/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-sam.txt
  cp infra/requirements-sam.txt .venv-sam/.pushmail-requirements
fi
SAM_CLI_TELEMETRY=0 AWS_REGION=${AWS_REGION:-us-east-1} .venv-sam/bin/sam validate --lint
.venv-sam/bin/cfn-lint infra/template.yaml
.venv-sam/bin/python infra/check_template.py

echo "== local AWS stack"
infra/local/stack.sh up
eval "$(infra/local/stack.sh env)"

echo "== cargo test (DynamoDB and SES on moto; the conformance suite also on the embedded store)"
mkdir -p .local
bounded 1800 cargo test --workspace 2>&1 | tee .local/cargo-test.log
# Every test runs here: one marked ignored (built without the AWS endpoint) fails the run.
if grep -Eq '[1-9][0-9]* ignored' .local/cargo-test.log; then
  grep -E '[1-9][0-9]* ignored|^test .* ignored' .local/cargo-test.log
  echo "some tests did not run (ignored)"; exit 1
fi

echo "== the service, admin, notice and purge suites again, on the embedded store"
PUSHMAIL_TEST_STORE=embedded bounded 900 cargo test -p pushmail-tests --test subscribe --test subscribe_refusals --test admin --test admin_access --test admin_integrated --test abuse --test lambda_events --test notices --test notice_fairness --test purge_in_steps

echo "== end to end: pushmail on DynamoDB and SES, a spec-following push service, schemathesis"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r infra/local/requirements-test.txt
cargo build --quiet --bin pushmail
export PUSHMAIL_TABLE="e2e-$(date +%s)-$$"
export PUSHMAIL_SES_IDENTITY=pushmail.test PUSHMAIL_MAIL_FROM="pushmail <push@pushmail.test>"
hint_topic=$("$venv/bin/python" infra/local/setup_aws.py | sed -n 's/^hint topic //p')
free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
admin_port=$(free_port)
e2e_smtp_port=$(free_port)
e2e_imap_port=$(free_port)
url="http://127.0.0.1:$port/subscribe"
target/debug/pushmail seed --store dynamodb --secret e2e-secret \
  --account carol@e2e.example --password carol-password --subscribe-url "$url"
PUSHMAIL_TOKEN=$(target/debug/pushmail bootstrap --store dynamodb --label e2e)
export PUSHMAIL_TOKEN
mkdir -p .local
# Change hints over SNS and SQS; the change log is polled only every 60 s, so the second
# listener's idler below wakes in time only through a hint.
hint_flags=(--hint-topic-arn "$hint_topic" --imap-idle-poll-secs 60 --imap-plaintext-login-on-loopback)
target/debug/pushmail --store dynamodb --mail ses --local-mode true --smtp-addr "127.0.0.1:$e2e_smtp_port" --submission-addr 127.0.0.1:0 --imap-addr "127.0.0.1:$e2e_imap_port" --imaps-addr 127.0.0.1:0 \
  "${hint_flags[@]}" --subscribe-addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$admin_port" >.local/e2e-dynamodb.log 2>&1 &
pids+=($!)
# A second listener process on the same table.
second_imap_port=$(free_port)
target/debug/pushmail --store dynamodb --mail ses --local-mode true --smtp-addr 127.0.0.1:0 --submission-addr 127.0.0.1:0 --imap-addr "127.0.0.1:$second_imap_port" --imaps-addr 127.0.0.1:0 \
  "${hint_flags[@]}" --subscribe-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 >.local/e2e-dynamodb-second.log 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && curl -s -o /dev/null "http://127.0.0.1:$admin_port/" && break
  sleep 0.1
done
bounded 600 "$venv/bin/python" tests/e2e/push_service.py --url "$url" --secret e2e-secret \
  --email carol@e2e.example --password carol-password --moto "$AWS_ENDPOINT_URL_SES" \
  --smtp-port "$e2e_smtp_port"
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$second_imap_port") 2>/dev/null && break
  sleep 0.1
done
bounded 600 "$venv/bin/python" tests/e2e/two_listeners.py --smtp-port "$e2e_smtp_port" --imap-port-a "$e2e_imap_port" \
  --imap-port-b "$second_imap_port" --user carol@e2e.example --password carol-password

echo "== schemathesis against the admin API"
# deleteToken is left out: schemathesis reuses ids it has seen, and would revoke its own token
# (the integration tests cover that route).
bounded 900 "$venv/bin/schemathesis" run shared/admin-api/openapi.yaml --url "http://127.0.0.1:$admin_port" \
  -H "Authorization: Bearer $PUSHMAIL_TOKEN" --exclude-operation-id deleteToken \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --phases examples,fuzzing --max-examples "${PUSHMAIL_SCHEMATHESIS_EXAMPLES:-25}" --seed 1 --no-color

echo "== Debian tools for the mail tests (swaks with TLS, Postfix's smtp-sink, mbsync, fetchmail)"
need=()
command -v swaks >/dev/null || need+=(swaks)
perl -MNet::SSLeay -MIO::Socket::SSL -e1 2>/dev/null || need+=(libnet-ssleay-perl libio-socket-ssl-perl)
perl -MAuthen::SASL -e1 2>/dev/null || need+=(libauthen-sasl-perl)
[ -x /usr/sbin/smtp-sink ] || need+=(postfix)
command -v mbsync >/dev/null || need+=(isync)
command -v fetchmail >/dev/null || need+=(fetchmail)
if [ ${#need[@]} -gt 0 ]; then
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  # Postfix is wanted for its test tools only: no mail system is configured or started.
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

echo "== the README's examples against the local process (README command 1, embedded store)"
sink_port=$(free_port)
sink_dir=$(mktemp -d)
chmod 777 "$sink_dir"  # smtp-sink drops to nobody
/usr/sbin/smtp-sink -u nobody -d "$sink_dir/%M." "127.0.0.1:$sink_port" 16 &
pids+=($!)
port=$(free_port)
admin_port=$(free_port)
smtp_port=$(free_port)
submission_port=$(free_port)
imap_port=$(free_port)
imaps_port=$(free_port)
local_dir=$(mktemp -d)
target/debug/pushmail --data-dir "$local_dir" --demo --subscribe-addr "127.0.0.1:$port" \
  --admin-addr "127.0.0.1:$admin_port" --smtp-addr "127.0.0.1:$smtp_port" --submission-addr "127.0.0.1:$submission_port" --imap-addr "127.0.0.1:$imap_port" --imaps-addr "127.0.0.1:$imaps_port" \
  --smarthost "127.0.0.1:$sink_port" >.local/e2e-pushmail.log 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$admin_port/" && break
  sleep 0.1
done
PUSHMAIL_TOKEN=$(sed -n 's/^ *export PUSHMAIL_TOKEN=//p' .local/e2e-pushmail.log)
[ -n "$PUSHMAIL_TOKEN" ] || { cat .local/e2e-pushmail.log; echo "pushmail printed no first-run token"; exit 1; }
export PUSHMAIL_TOKEN
# A README block between <!-- example:NAME --> and <!-- end -->, pointed at this run's ports.
readme_example() {
  local code
  code=$(sed -n "/<!-- example:$1 -->/,/<!-- end -->/p" README.md | sed '1,2d;$d' | sed '$d')
  [ -n "$code" ] || { echo "README.md has no example:$1 block" >&2; exit 1; }
  code=${code//127.0.0.1:8080/127.0.0.1:$port}
  code=${code//127.0.0.1:8081/127.0.0.1:$admin_port}
  code=${code//127.0.0.1:2525/127.0.0.1:$smtp_port}
  code=${code//127.0.0.1:2587/127.0.0.1:$submission_port}
  code=${code//127.0.0.1:1143/127.0.0.1:$imap_port}
  printf '%s\n' "$code"
}
expect() {  # expect NAME OUTPUT PATTERN...
  local name=$1 output=$2; shift 2
  for pattern in "$@"; do
    case "$output" in
      *"$pattern"*) ;;
      *) echo "$output"; echo "README example $name: no $pattern in its output"; echo "0 passed, 1 failed"; exit 1 ;;
    esac
  done
  echo "ok   README example $name"
}
expect subscribe "$(bash -c "$(readme_example subscribe)")" '"status":"subscribed"' '"activation":"sent"'
expect kept-mail "$(bash -c "$(readme_example kept-mail)")" 'Email activation information (push mail)'
expect smtp "$(bash -c "$(readme_example smtp)")" '"subject":"Hello over SMTP"' '"from":"bob@example.org"'
expect swaks "$(bash -c "$(readme_example swaks)" 2>&1)" '250 2.0.0 OK: queued as'
expect submission "$(bash -c "$(readme_example submission)" 2>&1)" \
  '235 2.7.0 Authentication successful' '"subject":"From the device"' '"\\Seen"'
expect rules "$(bash -c "$(readme_example rules)" 2>&1)" '"subject":"This week in Rust"'
expect imap "$(bash -c "$(readme_example imap)" 2>&1)" 'Subject: Email activation information (push mail)' '* SEARCH 1'
expect admin "$(bash -c "$(readme_example admin)")" \
  '"name":"example.org"' '"address":"bob@example.org"' '"status":"subscribed"' \
  '"registration":"r-bob"' '"status":"unlinked"'

echo "== Python's smtplib against the SMTP listeners"
bounded 600 "$venv/bin/python" tests/e2e/smtp_client.py --port "$smtp_port" --to alice@example.com
dkim_record=$(sed -n 's/^Demo DKIM: .* TXT "\(.*\)"$/\1/p' .local/e2e-pushmail.log)
bounded 600 "$venv/bin/python" tests/e2e/submission_client.py --port "$submission_port" --user alice@example.com \
  --password alice-password --sink-dir "$sink_dir" --dkim-record "$dkim_record" --admin "http://127.0.0.1:$admin_port"

echo "== imaplib and IMAPClient (IDLE) against the IMAP listener"
bounded 600 "$venv/bin/python" tests/e2e/imap_client.py --imap-port "$imap_port" --smtp-port "$smtp_port" \
  --user alice@example.com --password alice-password --imaps-port "$imaps_port"

echo "== mbsync and fetchmail syncing the whole account"
bounded 600 "$venv/bin/python" tests/e2e/sync_clients.py --imap-port "$imap_port" --smtp-port "$smtp_port" \
  --user alice@example.com --password alice-password

echo "== pushmail probe: an admin's end-to-end check against the process, and one that must fail"
probe=(target/debug/pushmail probe --subscribe-url "http://127.0.0.1:$port/subscribe" --account alice@example.com
  --smtp "127.0.0.1:$smtp_port" --imap "127.0.0.1:$imap_port")
probe_json=$(PUSHMAIL_PROBE_SECRET=local-dev-secret PUSHMAIL_PROBE_PASSWORD=alice-password bounded 120 "${probe[@]}" --json) \
  || { echo "$probe_json"; echo "pushmail probe failed against the process"; exit 1; }
case "$probe_json" in *'"ok":true'*'"step":"unsubscribe"'*) echo "ok   pushmail probe passes" ;;
  *) echo "$probe_json"; echo "pushmail probe: unexpected output"; exit 1 ;; esac
if PUSHMAIL_PROBE_SECRET=not-the-secret PUSHMAIL_PROBE_PASSWORD=alice-password bounded 120 "${probe[@]}" >/dev/null; then
  echo "pushmail probe passed with a wrong secret"; exit 1
fi
echo "ok   pushmail probe fails (exit 1) with a wrong secret"

echo "== the admin console and the user page in Debian's chromium (Playwright), checked by axe"
bounded 900 infra/local/browser.sh --admin "http://127.0.0.1:$admin_port" \
  --subscribe "http://127.0.0.1:$port/subscribe" --smtp-port "$smtp_port" --token "$PUSHMAIL_TOKEN"

echo "== the image: built FROM scratch with buildah, run under podman, probed, stopped with SIGTERM"
# A plain build: the profile-guided one (infra/pgo/build.sh) builds twice and trains between,
# a quarter of an hour more on two cores, for the same image's behaviour.
PUSHMAIL_PGO=0 bounded 1800 infra/image.sh --smoke

echo "== imaptest: Dovecot's IMAP compliance groups and a short stress run against README command 1's process"
passed=11
if [ -n "${IMAPTEST:-}" ] || [ -d ../shared/tools/imaptest ]; then
  IMAPTEST_STRICT=1 PUSHMAIL_BIN=target/debug/pushmail bounded 900 infra/bench/imaptest.sh 10 10
  passed=12
else
  echo "skipped: neither IMAPTEST nor ../shared/tools/imaptest beside this checkout"
fi

rm -rf "$local_dir" "$sink_dir"
echo "end-to-end: $passed passed, 0 failed"
