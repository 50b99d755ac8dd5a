/**
 * Short-lived state of the connect flow, kept in the store:
 *
 * - connect tickets (the `ticket` of an `authUrl`): 256 random bits, stored under their SHA-256
 *   (a store dump holds no usable ticket), bound to (subject, upstream, route), single-use
 *   (`take`), 10 minutes;
 * - pending authorizations (between the redirect to the upstream and its callback), keyed by
 *   the SHA-256 of `state`, single-use, with the PKCE verifier encrypted.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/elicitation#phishing
 */
import { createHash, randomBytes } from "node:crypto";
import type { SecretBox } from "../store/crypto.js";
import { openRecord, sealRecord, type SealedValue } from "../store/sealed.js";
import type { Store } from "../store/types.js";
import type { PendingAuthorization } from "./upstream.js";

export const TICKETS_NS = "connect-tickets";
export const FLOWS_NS = "oauth-flows";
/** Lifetime of a connect ticket and of a pending authorization. */
export const CONNECT_TTL_SECONDS = 600;

/** What a connect ticket stands for. */
export interface TicketData {
  /** The MCP caller's subject the connection is for. */
  subject: string;
  upstreamId: string;
  /** The route (operationId) whose request asked for the connection. */
  operationId: string;
  /** Scopes to request (step-up); undefined for the upstream's default choice. */
  scopes: string[] | undefined;
  /** Why the connection is needed. */
  reason: "authenticating" | "reconsent_required" | "step_up";
  /** Step-ups already done for the grant this replaces. */
  stepUps: number;
  createdAt: number;
  /**
   * Where the browser goes after connecting, when the connection was started from one of the
   * gateway's own pages (the consent page): a same-origin path, checked when the ticket is issued.
   */
  returnTo?: string | undefined;
}

/** A pending authorization: the upstream parameters plus who started it. */
export interface FlowData extends PendingAuthorization {
  upstreamId: string;
  /** Grant owner: a user's subject, or undefined for the shared grant. */
  subject: string | undefined;
  /** Who started it in the browser (the admin for shared grants). */
  startedBy: string;
  /** SHA-256 of the browser-binding cookie set when the flow started. */
  browserBinding: string;
  /** Scopes of the grant this replaces, and step-ups so far (bounded). */
  stepUps: number;
  /** Where to send the browser after success (same-origin path). */
  returnTo: string | undefined;
}

/** SHA-256, base64url: the store key of a bearer value. */
export function digest(value: string): string {
  return createHash("sha256").update(value).digest("base64url");
}

/** A fresh 256-bit random value, base64url. */
export function randomValue(): string {
  return randomBytes(32).toString("base64url");
}

const VALUE_RE = /^[A-Za-z0-9_-]{20,128}$/;

/** Issues a connect ticket. */
export async function issueTicket(store: Store, data: TicketData, ttlSeconds = CONNECT_TTL_SECONDS): Promise<string> {
  const ticket = randomValue();
  await store.put(TICKETS_NS, digest(ticket), data, { ttlSeconds });
  return ticket;
}

/** Reads a ticket without using it up (the confirmation page). */
export async function peekTicket(store: Store, ticket: string | null | undefined): Promise<TicketData | undefined> {
  if (!ticket || !VALUE_RE.test(ticket)) return undefined;
  return (await store.get<TicketData>(TICKETS_NS, digest(ticket)))?.value;
}

/** Uses a ticket up; undefined when it is unknown, expired or already used. */
export async function takeTicket(store: Store, ticket: string | null | undefined): Promise<TicketData | undefined> {
  if (!ticket || !VALUE_RE.test(ticket)) return undefined;
  return (await store.take<TicketData>(TICKETS_NS, digest(ticket)))?.value;
}

type FlowPublic = Omit<FlowData, "verifier">;

/** Saves a pending authorization under its `state`. */
export async function saveFlow(store: Store, secrets: SecretBox, flow: FlowData, ttlSeconds = CONNECT_TTL_SECONDS): Promise<void> {
  const key = digest(flow.state);
  const { verifier, ...rest } = flow;
  await store.put(FLOWS_NS, key, sealRecord(secrets, FLOWS_NS, key, { verifier }, { ...rest, state: "" }), { ttlSeconds });
}

/** The non-secret facts of a pending authorization, without using it up (browser binding checks). */
export async function peekFlow(store: Store, state: string | null | undefined): Promise<Omit<FlowPublic, "state"> | undefined> {
  if (!state || state.length > 512) return undefined;
  const rec = await store.get<SealedValue<FlowPublic>>(FLOWS_NS, digest(state));
  if (!rec) return undefined;
  const { sealed: _sealed, state: _state, ...rest } = rec.value;
  return rest;
}

/** Uses up the pending authorization of `state`; undefined when unknown, expired or used. */
export async function takeFlow(store: Store, secrets: SecretBox, state: string | null | undefined): Promise<FlowData | undefined> {
  if (!state || state.length > 512) return undefined;
  const key = digest(state);
  const rec = await store.take<SealedValue<FlowPublic>>(FLOWS_NS, key);
  if (!rec) return undefined;
  const { verifier } = openRecord<{ verifier: string }>(secrets, FLOWS_NS, key, rec.value);
  const { sealed: _sealed, ...rest } = rec.value;
  return { ...(rest as FlowPublic), state, verifier };
}
