// Infisical's older Node SDK (npm infisical-node 1.5.1), which decrypts on
// the client: GET /api/v2/service-token, then the encrypted GET
// /api/v3/secrets. Run against Latchkey unchanged by tests/infisical/run.sh.
//
//   node node_legacy.mjs HOST SERVICE_TOKEN
import InfisicalClient from "infisical-node";

const [host, token] = process.argv.slice(2);

function check(cond, what) {
  if (!cond) {
    console.error(`node infisical-node 1.5.1: ${what}`);
    process.exit(1);
  }
}

const client = new InfisicalClient({ token, siteURL: host, cacheTTL: 0, debug: true });
const all = await client.getAllSecrets({
  environment: "dev",
  path: "/sdk/legacy",
  attachToProcessEnv: false,
  includeImports: true,
});
const got = all
  .map((s) => `${s.secretName}=${s.secretValue}:${s.isFallback}`)
  .sort();
check(
  JSON.stringify(got) === JSON.stringify(["API_KEY=sk_legacy:false", "DB_URL=postgres://legacy:false"]),
  `getAllSecrets: ${JSON.stringify(got)}`,
);
const one = await client.getSecret("DB_URL", { environment: "dev", path: "/sdk/legacy", type: "personal" });
check(one.secretValue === "postgres://legacy" && !one.isFallback, `getSecret: ${JSON.stringify(one)}`);
console.log("node infisical-node 1.5.1, service token: service-token key, encrypted list and get, decrypted on the client ok");
