#!/usr/bin/env bash
# Fuzzes the SMTP command path (shared/smtp/fuzz, target smtp_session) for a while: arbitrary
# bytes into sessions of both roles on a real embedded store. Not part of the test command.
#
#   infra/bench/smtp_fuzz.sh [SECONDS]    (default 300)
#
# Needs a nightly toolchain (rustup toolchain install nightly) and cargo-fuzz, which it installs
# if missing. Seeds a corpus of well-formed sessions first; a crash leaves its input under
# shared/smtp/fuzz/artifacts/ and fails the script.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-300}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cd "$root/shared/smtp/fuzz"
corpus=corpus/smtp_session
mkdir -p "$corpus"
seed() { printf '%b' "$2" >"$corpus/seed-$1"; }
# First byte: even = inbound role, odd = submission.
seed inbound '\x00EHLO a\r\nMAIL FROM:<b@c.d> SIZE=10\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: x\r\n\r\n..y\r\n.\r\nQUIT\r\n'
seed relay '\x00HELO a\r\nMAIL FROM:<>\r\nRCPT TO:<@x.y:v@w.z>\r\nRCPT TO:<"a@b"@example.com>\r\nRSET\r\nNOOP\r\nVRFY a\r\n'
seed smuggle '\x00EHLO a\r\nMAIL FROM:<b@c.d>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nx\n.\nMAIL FROM:<e@f.g>\r\n.\r\n'
seed auth '\x01EHLO a\r\nAUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHB3\r\nAUTH LOGIN\r\nYWxpY2U=\r\n*\r\nSTARTTLS\r\nMAIL FROM:<alice@example.com>\r\n'
seed bdat '\x01EHLO a\r\nBDAT 10 LAST\r\n0123456789EXPN x\r\nHELP\r\nQUIT\r\n'
cargo +nightly fuzz run --target-dir "$root/target/fuzz" smtp_session "$corpus" -- \
  -max_total_time="$seconds" -max_len=8192 -timeout=10 -print_final_stats=1
