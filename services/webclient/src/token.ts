// Getting an access token from the token issuer by OAuth 2.0 client
// credentials (RFC 6749 §4.4), with client_secret_post: a form POST, which
// the browser sends without a CORS preflight but lets the page read only
// if the issuer allows this page's origin.

/** An access token and what its claims say about it. */
export interface Token {
  clientId: string;
  accessToken: string;
  expiresIn: number;
  /** The perms claim: domain → permission bitmask. */
  perms: Record<string, number>;
}

/** fetchToken asks the issuer at tokenUrl for a token for a client. */
export async function fetchToken(tokenUrl: string, clientId: string, secret: string): Promise<Token> {
  const body = new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, client_secret: secret });
  let res: Response;
  try {
    res = await fetch(tokenUrl, { method: "POST", body, credentials: "omit" });
  } catch (e) {
    // A network failure and a CORS refusal look the same to a page.
    throw new Error(`could not reach ${tokenUrl} (${String(e)}): is this origin allowed by the issuer's CORS?`);
  }
  const json: unknown = await res.json().catch(() => undefined);
  if (!res.ok) {
    const err = json as { error?: string; error_description?: string } | undefined;
    throw new Error(`${res.status} ${err?.error ?? "no OAuth error"}: ${err?.error_description ?? ""}`);
  }
  const tok = json as { access_token?: string; expires_in?: number };
  if (typeof tok?.access_token !== "string") {
    throw new Error("the issuer's answer has no access_token");
  }
  return { clientId, accessToken: tok.access_token, expiresIn: tok.expires_in ?? 0, perms: permsClaim(tok.access_token) };
}

/**
 * permsClaim reads the perms claim of a JWT without verifying it: the page
 * only shows it; the gateway is what verifies.
 */
function permsClaim(jwt: string): Record<string, number> {
  try {
    const payload = jwt.split(".")[1] ?? "";
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const perms = (JSON.parse(json) as { perms?: unknown }).perms;
    if (typeof perms !== "object" || perms === null) {
      return {};
    }
    return Object.fromEntries(
      Object.entries(perms).filter((e): e is [string, number] => Number.isSafeInteger(e[1])),
    );
  } catch {
    return {};
  }
}
