// The documented HTTP API, called the way any client calls it: the console adds no endpoint
// of its own. The credentials (an admin token, or an account's Basic credentials on the user
// page) live in sessionStorage: gone when the tab closes, never in a cookie, so no request is
// sent with them unless this code adds the header, and cross-site request forgery has nothing
// to ride on.

const KEY = "pushmail.credentials";
const SCOPE = "pushmail.scope";

export function signedIn() {
  return sessionStorage.getItem(KEY) !== null;
}

/** Keeps the Authorization header value for this tab. */
export function signIn(authorization) {
  sessionStorage.setItem(KEY, authorization);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(SCOPE);
}

/** Remembers that the token is one domain's (the server-wide screens are then left out). */
export function rememberDomainScope(isDomain) {
  if (isDomain) sessionStorage.setItem(SCOPE, "domain");
  else sessionStorage.removeItem(SCOPE);
}

export function domainScoped() {
  return sessionStorage.getItem(SCOPE) === "domain";
}

/** An error the API answered, with its words (`detail`) and kind (`error`). */
export class ApiError extends Error {
  constructor(status, kind, detail) {
    super(detail || `the server answered ${status}`);
    this.status = status;
    this.kind = kind;
  }
}

/** Calls the API; the JSON answer, or null for 204. Throws ApiError. */
export async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  const authorization = sessionStorage.getItem(KEY);
  if (authorization) headers.Authorization = authorization;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "network", "The server could not be reached.");
  }
  if (response.status === 204) return null;
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, answer?.error, answer?.detail);
  }
  return answer;
}

/** A path segment, escaped (addresses and folder names carry `@`, `/`, spaces). */
export function part(text) {
  return encodeURIComponent(text);
}
