#!/usr/bin/env bash
# Runs Infisical's own SDKs, installed by `make tools` (PyPI infisicalsdk in
# .tools/venv-infisical and infisical==1.6.0 in .tools/venv-infisical-legacy,
# npm @infisical/sdk and infisical-node@1.5.1 in tests/infisical/node_modules),
# unchanged against freshly started services on free ports: the current SDKs
# list, read, create, update and delete secrets over the HTTP API with a
# machine identity's access token and with a service token; the older ones
# read with a service token and decrypt on the client. Part of `make test`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

work=$(mktemp -d)
source tests/start-services.sh infisical
export LATCHKEY_CONFIG_DIR="$work/cli"

cli() { target/debug/latchkey --auth-addr "$LATCHKEY_AUTH_ADDR" --secrets-addr "$LATCHKEY_SECRETS_ADDR" "$@"; }
export LATCHKEY_TOKEN="$(cat "$LATCHKEY_DATA_DIR/admin-token")"
project=$(cli project create --name sdk --plain)
service_token=$(cli service-token create --projectId "$project" --scope='dev:/sdk/**' \
  --access-level=read --access-level=write --token-only)
identity=$(cli identity create --name sdk-worker --plain)
cli identity token-auth attach --identity-id "$identity" > /dev/null
cli project add-identity --projectId "$project" --identity-id "$identity" --role developer --scope='dev:/**' > /dev/null
identity_token=$(cli identity token create --identity-id "$identity" --token-only)
# Universal Auth: the SDKs log in with a client ID and client secret.
cli identity universal-auth attach --identity-id "$identity" > /dev/null
client_id=$(cli identity universal-auth get --identity-id "$identity" --plain)
client_secret=$(cli identity universal-auth client-secret create --identity-id "$identity" --description sdk --plain)
host="http://$LATCHKEY_HTTP_ADDR"
# What the older, client-side-decrypting SDKs read, written by Latchkey's CLI.
LATCHKEY_TOKEN="$service_token" cli secrets set DB_URL=postgres://legacy API_KEY=sk_legacy \
  --projectId "$project" --env dev --path /sdk/legacy > /dev/null

status=0
# The README's two blocks, as written, with this run's address.
LATCHKEY_TOKEN="$identity_token" cli secrets set DB_URL=postgres://readme --projectId "$project" --env dev --path /backend > /dev/null
readme_block() {
  awk -v b="<!-- infisical-clients:$1:begin -->" -v e="<!-- infisical-clients:$1:end -->" \
    '$0 == b {on=1; next} $0 == e {on=0} on && !/^```/' README.md \
    | sed -e "s#127.0.0.1:8080#$LATCHKEY_HTTP_ADDR#g"
}
readme_block python > "$work/readme.py"
node_block="tests/infisical/.readme-$$.mjs"   # beside node_modules, so the import resolves
readme_block node > "$node_block"
for block in "$work/readme.py" "$node_block"; do
  [ -s "$block" ] || { echo "infisical: README block missing: $block" >&2; status=1; }
done
py_out=$(INFISICAL_TOKEN="$identity_token" PROJECT_ID="$project" .tools/venv-infisical/bin/python "$work/readme.py") || status=1
node_out=$(INFISICAL_TOKEN="$identity_token" PROJECT_ID="$project" node "$node_block") || status=1
rm -f "$node_block"
for out in "$py_out" "$node_out"; do
  if [ "$out" != "DB_URL = postgres://readme" ]; then
    echo "infisical: a README block printed: $out" >&2; status=1
  fi
done
[ "$status" -eq 0 ] && echo "README blocks: python and node SDKs read dev:/backend ok"
# The Python SDK gets the whole four-part service token, the Node SDK the
# access part: both bearer forms.
.tools/venv-infisical/bin/python tests/infisical/python_sdk.py "$host" "$project" "$identity_token" "$service_token" "$client_id" "$client_secret" || status=1
node tests/infisical/node_sdk.mjs "$host" "$project" "$identity_token" "${service_token%.*}" "$client_id" "$client_secret" || status=1
.tools/venv-infisical-legacy/bin/python tests/infisical/python_legacy.py "$host" "$service_token" || status=1
node tests/infisical/node_legacy.mjs "$host" "$service_token" || status=1
if [ "$status" -ne 0 ]; then
  echo "infisical: a client failed; the services' log:" >&2
  cat "$work/services.log" >&2
fi
exit "$status"
