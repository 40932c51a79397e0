#!/usr/bin/env bash
# Starts both services in the foreground for `make run` and stops both on Ctrl-C.
# Environment: LATCHKEY_DATA_DIR (default ./latchkey-data), LATCHKEY_AUTH_ADDR,
# LATCHKEY_SECRETS_ADDR, LATCHKEY_HTTP_ADDR, and every variable the services read.
set -euo pipefail

export LATCHKEY_DATA_DIR="${LATCHKEY_DATA_DIR:-latchkey-data}"
auth_addr="${LATCHKEY_AUTH_ADDR:-127.0.0.1:50051}"
secrets_addr="${LATCHKEY_SECRETS_ADDR:-127.0.0.1:50052}"
http_addr="${LATCHKEY_HTTP_ADDR:-127.0.0.1:8080}"
export LATCHKEY_AUTH_ADDR="$auth_addr" LATCHKEY_SECRETS_ADDR="$secrets_addr" LATCHKEY_HTTP_ADDR="$http_addr"
export LATCHKEY_AUTH_URL="${LATCHKEY_AUTH_URL:-http://$auth_addr}"
bin="${LATCHKEY_BIN_DIR:-target/debug}"

# Waits until $2 listens on port ${1##*:}, reading /proc/net/tcp rather than
# connecting: a probe connection to a port in the ephemeral range can connect
# to itself and take the port from the service.
wait_for_listen() {
  local port hex
  port="${1##*:}"
  hex=$(printf ':%04X' "$port")
  for _ in $(seq 1 600); do
    if ! kill -0 "$2" 2>/dev/null; then
      echo "run: the service for $1 exited; see its log above" >&2
      return 1
    fi
    if awk -v p="$hex" '$2 ~ p"$" && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "run: nothing listens on $1 after 30 s" >&2
  return 1
}

trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

"$bin/latchkey-auth" &
wait_for_listen "$auth_addr" $!
"$bin/latchkey-secrets" &
secrets_pid=$!
wait_for_listen "$secrets_addr" $secrets_pid
wait_for_listen "$http_addr" $secrets_pid

cat <<MSG

  Latchkey is running (SQLite in $LATCHKEY_DATA_DIR/).
    auth service     $auth_addr
    secrets service  $secrets_addr
    Infisical API    http://$http_addr   (for Infisical's SDKs, CLI and operator)
    admin token      $LATCHKEY_DATA_DIR/admin-token   (mode 0600; written on the first start)
    grpcurl          .tools/bin/grpcurl

  Next: the README's quickstart, in another terminal. Ctrl-C stops both services.

MSG
wait
