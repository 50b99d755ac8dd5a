// Module resolution hook (node:module register): `@zuplo/runtime` and
// `@zuplo/runtime/mcp-gateway` resolve to Tollgate's own modules for projects loaded as ES
// modules. CommonJS projects go through the Module._resolveFilename patch in ../imports.ts.
const MAP = {
  "@zuplo/runtime": new URL("./runtime.cjs", import.meta.url).href,
  "@zuplo/runtime/mcp-gateway": new URL("./mcp-gateway.cjs", import.meta.url).href,
};

export async function resolve(specifier, context, next) {
  const url = MAP[specifier];
  if (url) return { url, format: "commonjs", shortCircuit: true };
  return next(specifier, context);
}
