#!/usr/bin/env bash
# Official MCP conformance suite (server scenarios) against the conformance test server,
# directly and behind the gateway's McpProxyHandler; prints both totals.
# Needs network access to the npm registry on first run (npx fetches node@22 for the suite).
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx scripts/conformance-server.ts "$@"
