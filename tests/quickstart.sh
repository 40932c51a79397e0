#!/usr/bin/env bash
# Runs the README's quickstart block exactly as written, against freshly
# started services on free ports with a throwaway data directory, and checks
# what a new user would see. Part of `make test`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

work=$(mktemp -d)
source tests/start-services.sh quickstart

# The block between the markers, with the default ports and data directory
# swapped for this run's.
awk '/<!-- quickstart:begin -->/{on=1; next} /<!-- quickstart:end -->/{on=0} on && !/^```/' README.md \
  | sed -e "s#127.0.0.1:50051#$LATCHKEY_AUTH_ADDR#g" \
        -e "s#127.0.0.1:50052#$LATCHKEY_SECRETS_ADDR#g" \
        -e "s#127.0.0.1:8080#$LATCHKEY_HTTP_ADDR#g" \
        -e "s#latchkey-data/#$LATCHKEY_DATA_DIR/#g" > "$work/quickstart.sh"
[ -s "$work/quickstart.sh" ] || { echo "quickstart: no block between the markers in README.md" >&2; exit 1; }

# A throwaway HOME: the README links ~/latchkey-demo, and the CLI's user
# config lives under it.
mkdir -p "$work/home"
if ! HOME="$work/home" bash -euo pipefail "$work/quickstart.sh" > "$work/out" 2>&1; then
  echo "quickstart: the README block failed; output:" >&2
  cat "$work/out" "$work/services.log" >&2
  exit 1
fi

passed=0 failed=0
expect() {
  if grep -qF -- "$1" "$work/out"; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "quickstart: expected output to contain: $1" >&2
  fi
}
expect "postgres://db.internal:5432/app"
expect '"name": "DB_URL"'
# `latchkey run -- env` saw both secrets, the one from stdin without its newline.
expect "DB_URL=postgres://db.internal:5432/app"
expect "API_KEY=sk_live_4242"
expect 'DB_URL="postgres://db.internal:5432/app"'
expect "SCOPE_DENIED"
expect "exit code 4"
[ -f "$work/home/latchkey-demo/.latchkey.json" ] && [ ! -e "$root/.latchkey.json" ] && passed=$((passed + 1)) || {
  failed=$((failed + 1)); echo "quickstart: latchkey init should link ~/latchkey-demo only" >&2; }
expect "TOKEN_USES_EXHAUSTED"
expect "exit code 3"
# The identity token's three allowed reads print the bare value.
[ "$(grep -c '^postgres://db.internal:5432/app$' "$work/out")" -eq 3 ] && passed=$((passed + 1)) || {
  failed=$((failed + 1)); echo "quickstart: expected exactly three plain reads" >&2; }
# Universal Auth: a login over HTTP gives a JWT that reads; the client secret counted it.
expect "login: Bearer 3600 2592000"
expect "authMethod: universal-auth"
[ "$(grep -c '^sk_live_4242$' "$work/out")" -ge 1 ] && passed=$((passed + 1)) || {
  failed=$((failed + 1)); echo "quickstart: the Universal Auth token should read API_KEY" >&2; }
expect "1/10"
# Infisical's raw listing over HTTP, with the service token's access part.
expect '"secretKey": "API_KEY"'
expect '"secretValue": "sk_live_4242"'
expect '"imports": []'
# grpcurl: reflection lists each service on its own port only, with the audit service, health and both reflection versions.
expect "latchkey.auth.v1.AuthService"
expect "latchkey.secrets.v1.SecretsService"
expect "latchkey.audit.v1.AuditService"
expect "grpc.health.v1.Health"
expect "grpc.reflection.v1alpha.ServerReflection"
[ "$(grep -c '^latchkey\.\(auth\|secrets\)\.v1\.[A-Za-z]*Service$' "$work/out")" -eq 2 ] &&
  [ "$(grep -c '^latchkey\.audit\.v1\.AuditService$' "$work/out")" -eq 2 ] && passed=$((passed + 1)) || {
  failed=$((failed + 1)); echo "quickstart: each service should list only itself and the audit service" >&2; }
# describe carries the proto comments.
expect "// Describes the caller's own token; does not consume a use."
expect "// Folder path, absolute, e.g. \`/backend\`; empty means \`/\`."
expect '"tokenType": "TOKEN_TYPE_SERVICE"'
expect '"secretPath": "/backend"'
expect '"encryptedProjectKey": {'
expect '"@type":"type.googleapis.com/google.rpc.ErrorInfo","domain":"latchkey","metadata":{"principal":"service-token:'
expect '"reason":"SCOPE_DENIED"}'
[ "$(grep -c '"status": "SERVING"' "$work/out")" -eq 2 ] && passed=$((passed + 1)) || {
  failed=$((failed + 1)); echo "quickstart: expected two SERVING health checks" >&2; }
# The Rust client example loaded both secrets of dev:/backend, and printed no value.
expect "loaded API_KEY"
expect "loaded DB_URL"
[ "$(grep -c '^loaded ' "$work/out")" -eq 2 ] && passed=$((passed + 1)) || {
  failed=$((failed + 1)); echo "quickstart: the Rust example should load exactly two secrets" >&2; }
if [ "$failed" -gt 0 ] || [ -n "${QUICKSTART_SHOW:-}" ]; then cat "$work/out" >&2; fi
echo "quickstart: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
