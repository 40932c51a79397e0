"""Infisical's older Python SDK (PyPI infisical==1.6.0), which decrypts on
the client: it reads GET /api/v2/service-token for the project key under
the token's key part, then the encrypted GET /api/v3/secrets. Run against
Latchkey unchanged by tests/infisical/run.sh (make test).

    python python_legacy.py HOST SERVICE_TOKEN
"""
import sys

from infisical import InfisicalClient

host, token = sys.argv[1:3]


def check(cond, what):
    if not cond:
        raise SystemExit(f"python infisical 1.6.0: {what}")


client = InfisicalClient(token=token, site_url=host, cache_ttl=0, debug=True)
bundles = client.get_all_secrets(environment="dev", path="/sdk/legacy")
got = sorted((b.secret_name, b.secret_value, b.is_fallback) for b in bundles)
check(got == [("API_KEY", "sk_legacy", False), ("DB_URL", "postgres://legacy", False)],
      f"get_all_secrets: {got}")
# The default type is personal; Latchkey serves the shared secret.
one = client.get_secret("DB_URL", environment="dev", path="/sdk/legacy")
check((one.secret_value, one.is_fallback) == ("postgres://legacy", False), f"get_secret: {one}")
print("python infisical 1.6.0, service token: service-token key, encrypted list and get, decrypted on the client ok")
