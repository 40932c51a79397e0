# Sourced by the scripts that test against real services (the quickstart and
# Infisical's clients): starts both services as `make run` does, on free
# loopback ports with a throwaway data directory under $work, waits until
# they listen, and stops them and removes $work on exit.
# Needs: $work (a fresh directory) and $1, the caller's name for messages.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export LATCHKEY_DATA_DIR="$work/latchkey-data"
export LATCHKEY_AUTH_ADDR="127.0.0.1:$(free_port)" LATCHKEY_SECRETS_ADDR="127.0.0.1:$(free_port)"
export LATCHKEY_HTTP_ADDR="127.0.0.1:$(free_port)"
export LATCHKEY_AUTH_URL="http://$LATCHKEY_AUTH_ADDR" RUST_LOG=warn
unset LATCHKEY_TOKEN DATABASE_URL XDG_CONFIG_HOME LATCHKEY_CONFIG_DIR

cleanup() { [ -n "${services:-}" ] && kill "$services" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
bash scripts/run-services.sh > "$work/services.log" 2>&1 &
services=$!
for _ in $(seq 1 600); do
  grep -q "Latchkey is running" "$work/services.log" && break
  kill -0 "$services" 2>/dev/null || { cat "$work/services.log" >&2; exit 1; }
  sleep 0.05
done
grep -q "Latchkey is running" "$work/services.log" || { echo "$1: services did not start" >&2; cat "$work/services.log" >&2; exit 1; }
