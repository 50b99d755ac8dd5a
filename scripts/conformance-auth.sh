#!/usr/bin/env bash
# Official MCP conformance suite, client side (`--suite auth` by default), against the gateway's
# upstream OAuth client: the suite starts each scenario's MCP + authorization server and runs
# scripts/conformance-auth-client.ts, which drives src/oauth/ (discovery, registration, the
# authorization code flow, refresh, step-up) the way mcp-token-exchange-inbound does.
#
# Usage: scripts/conformance-auth.sh [suite|--scenario NAME]   (suites: auth, backcompat, draft, all)
# The suite needs Node 22: it runs under the `node@22` npm package through npx (downloaded into
# npx's cache on first use). Results (checks.json per scenario) go to a temp directory.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cli="$root/node_modules/@modelcontextprotocol/conformance/dist/index.js"
loader="$root/node_modules/tsx/dist/loader.mjs"
[[ -f "$cli" ]] || { echo "missing $cli: run npm ci first" >&2; exit 2; }
out="$(mktemp -d "${TMPDIR:-/tmp}/tollgate-conformance-auth-XXXXXX")"
if [[ "${1:-}" == "--scenario" ]]; then select=(--scenario "${2:?scenario name}"); else select=(--suite "${1:-auth}"); fi
cd "$out"
set +e
npx -y -p node@22 -- node "$cli" client \
  --command "node --import $loader $root/scripts/conformance-auth-client.ts" \
  "${select[@]}" -o "$out/results" >"$out/output.txt" 2>&1
status=$?
set -e
if grep -q "SUITE SUMMARY" "$out/output.txt"; then
  sed -n '/=== SUITE SUMMARY ===/,$p' "$out/output.txt"
else
  tail -n 40 "$out/output.txt"
fi
echo "full output: $out/output.txt"
exit "$status"
