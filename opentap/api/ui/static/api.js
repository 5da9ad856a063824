// The device's own API, called with the token the person signed in with. The token lives in sessionStorage
// (gone when the tab closes), travels only in the X-Auth-Token header, and is never put in a URL.

import { csvToParquet } from "./parquet.js";

const KEY = "opentap.token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  set token(value) { if (value) sessionStorage.setItem(KEY, value); else sessionStorage.removeItem(KEY); },
};

let onUnauthorized = () => {};
export function whenUnauthorized(fn) { onUnauthorized = fn; }

// The device's own words: OpenTap's {"msg"}, Neutron's {"NeutronError": {"message"}}, Keystone's {"error"}.
async function message(response) {
  try {
    const body = await response.json();
    return body.msg || (body.NeutronError && body.NeutronError.message) || (body.error && body.error.message)
      || `${response.status} ${response.statusText}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

export function url(path, params = {}) {
  const u = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") u.searchParams.set(k, String(v));
  }
  return u;
}

export async function call(path, { method = "GET", params = {}, body, token = session.token, raw = false } = {}) {
  const headers = { "X-Auth-Token": token || "" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url(path, params), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
    credentials: "omit", redirect: "error",
  });
  if (!response.ok) {
    const error = new ApiError(response.status, await message(response));
    if (response.status === 401 && token === session.token) onUnauthorized(error);
    throw error;
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

// A capture's data saved as a file: fetched with the header (a link could not carry the token), then handed to
// the browser from memory. Parquet is made here from the CSV (parquet.js), as the Python client makes it.
export async function download(id, project, format) {
  const parquet = format === "parquet";
  const response = await call("/retrieve", { params: { id, project, format: parquet ? "csv" : format }, raw: true });
  const blob = parquet ? csvToParquet(await response.text()) : await response.blob();
  const disposition = response.headers.get("content-disposition") || "";
  let name = (/filename="([^"]+)"/.exec(disposition) || [])[1] || `${id}.${format || "data"}`;
  if (parquet) name = name.replace(/\.csv$/, "") + ".parquet";
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  return { name, size: blob.size };
}
