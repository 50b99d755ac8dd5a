/**
 * Browser pages: one small HTML shell with strict security headers, and HTML escaping.
 *
 * Every page the gateway renders goes through {@link htmlPage}, so every page gets the same
 * Content-Security-Policy (no scripts at all, no framing), `no-store` caching and `nosniff`.
 */

/** Escapes text for use in HTML element content and double-quoted attribute values. */
export function escapeHtml(s: unknown): string {
  return String(s ?? "").replace(/[&<>"'`=]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Extra options for {@link htmlPage}. */
export interface HtmlPageInit {
  status?: number;
  headers?: HeadersInit;
  /**
   * Extra `form-action` sources. Browsers apply `form-action` to the redirects that follow a
   * form submission, so a form whose POST answers with a redirect to another origin (the OAuth
   * client's redirect URI, an upstream authorization endpoint) must list that origin here.
   * Accepts URLs (reduced to their origin, or `scheme:` for non-http schemes) or CSP sources.
   */
  formAction?: string[];
  /**
   * Who is signed in (a bar at the top of the page with a sign-out button), or that nobody is
   * (the bar says so, with a sign-in link when the gateway has a browser login). Pages rendered
   * for a browser pass it, from `pageAccount` in `session.ts`.
   */
  account?: PageAccount | undefined;
}

/** Who is signed in, and the sign-out form's target (POST with the session's CSRF token). */
export interface AccountBlock {
  label: string;
  csrf: string;
  /** The sign-out endpoint (`B/logout`). */
  action: string;
  /** Same-origin page to return to after signing out (sign-in is asked for again there). */
  returnTo?: string | undefined;
}

/** Nobody is signed in to the gateway in this browser. */
export interface SignedOutBlock {
  signedOut: true;
  /** Where signing in starts (`B/login?return_to=…`); absent when the gateway has no browser login. */
  signIn?: string | undefined;
}

/** The account bar's content: a signed-in user, or nobody. */
export type PageAccount = AccountBlock | SignedOutBlock;

/** A form that ends the browser session (POST with the session's CSRF token), with its own button. */
export function signOutForm(a: AccountBlock, opts: { button?: string; buttonClass?: string; returnTo?: string | undefined } = {}): string {
  const returnTo = opts.returnTo ?? a.returnTo;
  return (
    `<form method="post" action="${escapeHtml(a.action)}">` +
    `<input type="hidden" name="csrf" value="${escapeHtml(a.csrf)}">` +
    (returnTo ? `<input type="hidden" name="return_to" value="${escapeHtml(returnTo)}">` : "") +
    `<button type="submit" class="${escapeHtml(opts.buttonClass ?? "link")}">${escapeHtml(opts.button ?? "Sign out")}</button></form>`
  );
}

/**
 * The account bar: "Signed in as … [Sign out]" (its own small form, so it works on every page),
 * or "Not signed in" (with a sign-in link when there is a browser login), never a sign-out.
 */
export function accountBar(a: PageAccount): string {
  if ("signedOut" in a) {
    return (
      `<header class="account" data-signed-in="false"><span>Not signed in</span>` +
      (a.signIn ? `<a class="link" href="${escapeHtml(a.signIn)}">Sign in</a>` : "") +
      `</header>`
    );
  }
  return `<header class="account" data-signed-in="true"><span>Signed in as <strong>${escapeHtml(a.label)}</strong></span>${signOutForm(a)}</header>`;
}

/** Reduces a URL to a CSP source expression: its origin for http(s), `scheme:` otherwise. */
export function cspSource(urlOrSource: string): string | undefined {
  try {
    const u = new URL(urlOrSource);
    if (u.protocol === "http:" || u.protocol === "https:") return u.origin;
    if (/^[a-z][a-z0-9+.-]*:$/i.test(u.protocol)) return u.protocol;
    return undefined;
  } catch {
    return /^[a-z][a-z0-9+.-]*:$/i.test(urlOrSource) ? urlOrSource : undefined;
  }
}

/** The Content-Security-Policy every gateway page carries. */
export function pageCsp(formAction: string[] = []): string {
  const extra = [...new Set(formAction.map(cspSource).filter((s): s is string => !!s))];
  // No script-src at all: the pages work without JavaScript.
  return [
    "default-src 'none'",
    "style-src 'unsafe-inline'",
    "img-src data:",
    `form-action 'self'${extra.length ? ` ${extra.join(" ")}` : ""}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join("; ");
}

/** Security headers for browser pages (also usable on the gateway's redirects). */
export function pageHeaders(init: Pick<HtmlPageInit, "headers" | "formAction"> = {}): Headers {
  const h = new Headers(init.headers);
  h.set("content-security-policy", pageCsp(init.formAction));
  h.set("cache-control", "no-store");
  h.set("pragma", "no-cache");
  h.set("x-content-type-options", "nosniff");
  h.set("referrer-policy", "no-referrer");
  h.set("x-frame-options", "DENY");
  return h;
}

const STYLE = `
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:34rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.35rem;margin:0 0 1rem}
p{margin:.6rem 0}
.muted{color:#5b6270;font-size:.9rem}
.host{font:600 1.05rem ui-monospace,SFMono-Regular,Menlo,monospace;background:#fff6d6;border:1px solid #e8d48a;padding:.15rem .4rem;border-radius:6px;word-break:break-all}
.warn{background:#fff3f0;border:1px solid #f0b8a8;padding:.6rem .8rem;border-radius:8px}
ul.list{list-style:none;padding:0;margin:.8rem 0}
ul.list li{display:flex;align-items:center;justify-content:space-between;gap:1rem;padding:.6rem .8rem;border:1px solid #e1e4ea;border-radius:8px;margin:.4rem 0}
.badge{font-size:.8rem;padding:.1rem .5rem;border-radius:999px;background:#e7f6ea;color:#1f6b33}
.badge.off{background:#eef0f4;color:#5b6270}
label{display:block;font-weight:600;margin:.8rem 0 .3rem}
input[type=text]{width:100%;padding:.55rem .7rem;font-size:1rem;border:1px solid #c5cad3;border-radius:8px}
.actions{display:flex;gap:.75rem;margin-top:1.4rem}
button,.button{font:600 1rem system-ui,sans-serif;padding:.55rem 1.2rem;border-radius:8px;border:1px solid #2f5bd3;background:#2f5bd3;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary,.button.secondary{background:#fff;color:#2f5bd3}
a.button.small{font-size:.85rem;padding:.25rem .8rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
header.account{display:flex;align-items:center;justify-content:space-between;gap:1rem;max-width:34rem;margin:1.5rem auto -1.5rem;padding:0 .5rem;font-size:.9rem;color:#5b6270}
header.account form{margin:0}
button.link,a.link{background:none;border:none;color:#2f5bd3;padding:0;font:600 .9rem system-ui,sans-serif;text-decoration:underline;cursor:pointer}
h2{font-size:1.05rem;margin:0 0 .5rem}
section.step{border:1px solid #e1e4ea;border-radius:10px;padding:1rem 1.1rem;margin:1rem 0}
section.step.current{border:2px solid #2f5bd3;background:#f7f9ff}
section.step.later{opacity:.85}
li.upstream.todo{border-color:#2f5bd3;background:#fff}
a.button.big{font-size:1.05rem;padding:.7rem 1.3rem;white-space:nowrap}
button[disabled]{background:#c5cad3;border-color:#c5cad3;color:#fff;cursor:not-allowed}
.blocked{font-size:.9rem;color:#8a4b00;background:#fff6d6;border:1px solid #e8d48a;padding:.5rem .7rem;border-radius:8px}
`;

/**
 * Renders a complete HTML page. `bodyHtml` must already be escaped ({@link escapeHtml}).
 * Sets a strict CSP (`default-src 'none'`, `frame-ancestors 'none'`), `cache-control: no-store`,
 * `x-content-type-options: nosniff` and `referrer-policy: no-referrer`.
 * @see https://www.w3.org/TR/CSP3/#directive-form-action
 */
export function htmlPage(title: string, bodyHtml: string, init: HtmlPageInit = {}): Response {
  const headers = pageHeaders(init);
  headers.set("content-type", "text/html; charset=utf-8");
  const html =
    `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<meta name="referrer" content="no-referrer">` +
    `<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>` +
    `<body>${init.account ? accountBar(init.account) : ""}<main>${bodyHtml}</main></body></html>`;
  return new Response(html, { status: init.status ?? 200, headers });
}

/** A short page with a heading and a message (errors, confirmations). */
export function messagePage(title: string, message: string, init: HtmlPageInit = {}): Response {
  return htmlPage(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`, init);
}

/** A 302/303 redirect carrying the page security headers (no-store, no referrer). */
export function redirect(location: string, init: { status?: 302 | 303; headers?: HeadersInit } = {}): Response {
  const headers = pageHeaders({ headers: init.headers });
  headers.set("location", location);
  return new Response(null, { status: init.status ?? 302, headers });
}
