/** Each IdP preset: the URLs it derives and the inputs it refuses (documented shapes). */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { z } from "zod";
import { auth0Endpoints, auth0OptionsSchema } from "./auth0.js";
import { clerkEndpoints, clerkOptionsSchema } from "./clerk.js";
import { cognitoEndpoints, cognitoOptionsSchema } from "./cognito.js";
import { entraEndpoints, entraOptionsSchema } from "./entra.js";
import { googleEndpoints, googleOptionsSchema } from "./google.js";
import { keycloakEndpoints, keycloakOptionsSchema } from "./keycloak.js";
import { logtoEndpoints, logtoOptionsSchema } from "./logto.js";
import { oktaEndpoints, oktaOptionsSchema } from "./okta.js";
import { oneLoginEndpoints, oneLoginOptionsSchema } from "./onelogin.js";
import { pingEndpoints, pingOptionsSchema } from "./ping.js";
import { workosEndpoints, workosOptionsSchema } from "./workos.js";
import type { IdpEndpoints } from "../options.js";

const login = { clientId: "cid", clientSecret: "secret" };

/** Parses `options` (with a client) and returns the derived endpoints as a list. */
function derive<S extends z.ZodType>(schema: S, endpoints: (o: z.output<S>) => IdpEndpoints, options: object): string[] {
  const e = endpoints(schema.parse({ ...login, ...options }));
  return [e.issuer, e.jwksUrl, e.authorizationUrl, e.tokenUrl];
}

/** The JSON paths of the problems `options` has. */
function refused(schema: z.ZodType, options: object): string[] {
  const r = schema.safeParse({ ...login, ...options });
  assert.equal(r.success, false, `expected ${JSON.stringify(options)} to be refused`);
  return r.error!.issues.map((i) => i.path.join("."));
}

test("auth0", () => {
  assert.deepEqual(derive(auth0OptionsSchema, auth0Endpoints, { auth0Domain: "t.us.auth0.com" }), [
    "https://t.us.auth0.com/",
    "https://t.us.auth0.com/.well-known/jwks.json",
    "https://t.us.auth0.com/authorize",
    "https://t.us.auth0.com/oauth/token",
  ]);
  for (const d of ["https://t.us.auth0.com", "t.us.auth0.com/", "localhost"]) assert.deepEqual(refused(auth0OptionsSchema, { auth0Domain: d }), ["auth0Domain"]);
  assert.deepEqual(refused(auth0OptionsSchema, { auth0Domain: "t.us.auth0.com", clientId: undefined }), ["clientId"]);
});

test("clerk", () => {
  assert.deepEqual(derive(clerkOptionsSchema, clerkEndpoints, { frontendApiUrl: "https://verb-noun-00.clerk.accounts.dev/" }), [
    "https://verb-noun-00.clerk.accounts.dev",
    "https://verb-noun-00.clerk.accounts.dev/.well-known/jwks.json",
    "https://verb-noun-00.clerk.accounts.dev/oauth/authorize",
    "https://verb-noun-00.clerk.accounts.dev/oauth/token",
  ]);
  for (const u of [
    "https://clerk.example.com/v1",
    "https://clerk.example.com?x=1",
    "https://clerk.example.com#f",
    "https://user:pw@clerk.example.com",
    "clerk.example.com",
  ]) {
    assert.deepEqual(refused(clerkOptionsSchema, { frontendApiUrl: u }), ["frontendApiUrl"], u);
  }
  // Clerk's preset has no pkce override.
  assert.deepEqual(refused(clerkOptionsSchema, { frontendApiUrl: "https://c.example", browserLoginOverrides: { pkce: "S256" } }), ["browserLoginOverrides"]);
});

test("cognito", () => {
  const o = { awsRegion: "us-east-1", userPoolId: "us-east-1_AbC123", userPoolDomain: "my-app.auth.us-east-1.amazoncognito.com" };
  assert.deepEqual(derive(cognitoOptionsSchema, cognitoEndpoints, o), [
    "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC123",
    "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC123/.well-known/jwks.json",
    "https://my-app.auth.us-east-1.amazoncognito.com/oauth2/authorize",
    "https://my-app.auth.us-east-1.amazoncognito.com/oauth2/token",
  ]);
  for (const d of ["https://my-app.auth.us-east-1.amazoncognito.com", "my-app.auth.us-east-1.amazoncognito.com/", "auth.example.com/login"]) {
    assert.deepEqual(refused(cognitoOptionsSchema, { ...o, userPoolDomain: d }), ["userPoolDomain"], d);
  }
  assert.deepEqual(refused(cognitoOptionsSchema, { ...o, userPoolId: "eu-west-1_AbC123" }), ["userPoolId"]);
  assert.deepEqual(refused(cognitoOptionsSchema, { userPoolId: o.userPoolId, userPoolDomain: o.userPoolDomain }), ["awsRegion"]);
});

test("entra", () => {
  const t = "11111111-2222-3333-4444-555555555555";
  assert.deepEqual(derive(entraOptionsSchema, entraEndpoints, { tenantId: t }), [
    `https://login.microsoftonline.com/${t}/v2.0`,
    `https://login.microsoftonline.com/${t}/discovery/v2.0/keys`,
    `https://login.microsoftonline.com/${t}/oauth2/v2.0/authorize`,
    `https://login.microsoftonline.com/${t}/oauth2/v2.0/token`,
  ]);
  for (const bad of ["common", "organizations", "consumers", "contoso.onmicrosoft.com", `https://login.microsoftonline.com/${t}`]) {
    assert.deepEqual(refused(entraOptionsSchema, { tenantId: bad }), ["tenantId"], bad);
  }
});

test("google", () => {
  const clientId = "1234-abc.apps.googleusercontent.com";
  assert.deepEqual(derive(googleOptionsSchema, googleEndpoints, { clientId }), [
    "https://accounts.google.com",
    "https://www.googleapis.com/oauth2/v3/certs",
    "https://accounts.google.com/o/oauth2/v2/auth",
    "https://oauth2.googleapis.com/token",
  ]);
  assert.deepEqual(refused(googleOptionsSchema, {}), ["clientId"]);
});

test("keycloak", () => {
  assert.deepEqual(derive(keycloakOptionsSchema, keycloakEndpoints, { keycloakBaseUrl: "https://kc.example/auth/", realm: "corp" }), [
    "https://kc.example/auth/realms/corp",
    "https://kc.example/auth/realms/corp/protocol/openid-connect/certs",
    "https://kc.example/auth/realms/corp/protocol/openid-connect/auth",
    "https://kc.example/auth/realms/corp/protocol/openid-connect/token",
  ]);
  assert.deepEqual(refused(keycloakOptionsSchema, { keycloakBaseUrl: "https://kc.example/realms/corp", realm: "corp" }), ["keycloakBaseUrl"]);
  assert.deepEqual(refused(keycloakOptionsSchema, { keycloakBaseUrl: "https://kc.example" }), ["realm"]);
});

test("logto", () => {
  assert.deepEqual(derive(logtoOptionsSchema, logtoEndpoints, { logtoEndpoint: "https://abc123.logto.app" }), [
    "https://abc123.logto.app/oidc",
    "https://abc123.logto.app/oidc/jwks",
    "https://abc123.logto.app/oidc/auth",
    "https://abc123.logto.app/oidc/token",
  ]);
  for (const e of ["https://abc123.logto.app/oidc", "https://abc123.logto.app/x/"]) assert.deepEqual(refused(logtoOptionsSchema, { logtoEndpoint: e }), ["logtoEndpoint"]);
});

test("okta: the org authorization server unless authorizationServerId is set", () => {
  assert.deepEqual(derive(oktaOptionsSchema, oktaEndpoints, { oktaDomain: "acme.okta.com" }), [
    "https://acme.okta.com",
    "https://acme.okta.com/oauth2/v1/keys",
    "https://acme.okta.com/oauth2/v1/authorize",
    "https://acme.okta.com/oauth2/v1/token",
  ]);
  assert.deepEqual(derive(oktaOptionsSchema, oktaEndpoints, { oktaDomain: "acme.okta.com", authorizationServerId: "default" }), [
    "https://acme.okta.com/oauth2/default",
    "https://acme.okta.com/oauth2/default/v1/keys",
    "https://acme.okta.com/oauth2/default/v1/authorize",
    "https://acme.okta.com/oauth2/default/v1/token",
  ]);
  for (const d of ["https://acme.okta.com", "acme.okta.com/", "acme.okta.com/oauth2"]) assert.deepEqual(refused(oktaOptionsSchema, { oktaDomain: d }), ["oktaDomain"], d);
});

test("onelogin", () => {
  assert.deepEqual(derive(oneLoginOptionsSchema, oneLoginEndpoints, { oneLoginSubdomain: "acme" }), [
    "https://acme.onelogin.com/oidc/2",
    "https://acme.onelogin.com/oidc/2/certs",
    "https://acme.onelogin.com/oidc/2/auth",
    "https://acme.onelogin.com/oidc/2/token",
  ]);
  for (const s of ["https://acme", "acme.onelogin.com", "acme/", "acme/oidc"]) assert.deepEqual(refused(oneLoginOptionsSchema, { oneLoginSubdomain: s }), ["oneLoginSubdomain"], s);
  assert.deepEqual(refused(oneLoginOptionsSchema, { oneLoginSubdomain: "acme", browserLoginOverrides: { pkce: "none" } }), ["browserLoginOverrides"]);
});

test("ping: region hosts, custom domains, environment id checks", () => {
  const env = "abcdef01-2345-6789-abcd-ef0123456789";
  assert.deepEqual(derive(pingOptionsSchema, pingEndpoints, { environmentId: env }), [
    `https://auth.pingone.com/${env}/as`,
    `https://auth.pingone.com/${env}/as/jwks`,
    `https://auth.pingone.com/${env}/as/authorize`,
    `https://auth.pingone.com/${env}/as/token`,
  ]);
  const hosts = { canada: "auth.pingone.ca", europe: "auth.pingone.eu", singapore: "auth.pingone.sg", australia: "auth.pingone.com.au", "asia-pacific": "auth.pingone.asia" };
  for (const [region, host] of Object.entries(hosts)) {
    assert.equal(derive(pingOptionsSchema, pingEndpoints, { environmentId: env, region })[0], `https://${host}/${env}/as`);
  }
  assert.deepEqual(derive(pingOptionsSchema, pingEndpoints, { customDomain: "login.example.com", region: "europe" }), [
    "https://login.example.com/as",
    "https://login.example.com/as/jwks",
    "https://login.example.com/as/authorize",
    "https://login.example.com/as/token",
  ]);
  assert.deepEqual(refused(pingOptionsSchema, { environmentId: "my-env" }), ["environmentId"]);
  assert.deepEqual(refused(pingOptionsSchema, {}), ["environmentId"]);
  assert.deepEqual(refused(pingOptionsSchema, { environmentId: env, region: "mars" }), ["region"]);
  assert.deepEqual(refused(pingOptionsSchema, { customDomain: "https://login.example.com" }), ["customDomain"]);
});

test("workos", () => {
  assert.deepEqual(derive(workosOptionsSchema, workosEndpoints, { clientId: "client_01ABC" }), [
    "https://api.workos.com/user_management/client_01ABC",
    "https://api.workos.com/sso/jwks/client_01ABC",
    "https://api.workos.com/user_management/authorize",
    "https://api.workos.com/user_management/authenticate",
  ]);
  assert.deepEqual(refused(workosOptionsSchema, { clientId: "01ABC" }), ["clientId"]);
});

test("every preset: required secret, documented defaults, no unknown overrides", () => {
  const o = oktaOptionsSchema.parse({ oktaDomain: "acme.okta.com", ...login });
  assert.equal(o.scope, "openid profile email");
  assert.deepEqual(o.browserLoginOverrides, { remoteTimeoutMs: 10_000, stateTtlSeconds: 900, sessionTtlSeconds: 28_800 });
  assert.deepEqual(refused(oktaOptionsSchema, { oktaDomain: "acme.okta.com", clientSecret: "" }), ["clientSecret"]);
  assert.deepEqual(refused(oktaOptionsSchema, { oktaDomain: "acme.okta.com", browserLoginOverrides: { url: "https://x" } }), ["browserLoginOverrides"]);
  assert.deepEqual(refused(oktaOptionsSchema, { oktaDomain: "acme.okta.com", browserLoginOverrides: { remoteTimeoutMs: 0 } }), ["browserLoginOverrides.remoteTimeoutMs"]);
});
