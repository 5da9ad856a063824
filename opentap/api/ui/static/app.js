// The page's frame: sign-in, the header, and a router over the location's hash (#/overview, #/captures,
// #/capture/ID?project=P, #/taas). Each page is a module whose render(main, ctx) returns a function that stops
// what it started (polling), called when the person goes elsewhere.
import { call, session, whenUnauthorized } from "./api.js";
import { clear, field, h } from "./dom.js";
import * as overview from "./overview.js";
import * as captures from "./captures.js";
import * as capture from "./capture.js";
import * as taas from "./taas.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const statusLine = document.getElementById("status");
let stopPage = () => {};
let context = null;

export function say(text) {
  statusLine.textContent = text;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { statusLine.textContent = ""; }, 6000);
}

function signIn(message) {
  stopPage();
  stopPage = () => {};
  context = null;
  nav.hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  document.getElementById("device").textContent = "";
  const token = h("input", { type: "password", name: "token", autocomplete: "off", required: true,
    "aria-describedby": "signin-help" });
  const error = h("div", { role: "alert" });
  if (message) error.append(h("p", { class: "error" }, message));
  const form = h("form", { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", { id: "signin-help", class: "muted" }, "An API token of this device (`opentap token create`). It is kept in this tab only, until you close it or sign out."),
    field("API token", token), error, h("p", {}, h("button", { class: "primary", type: "submit" }, "Sign in")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await call("/capabilities", { token: token.value.trim() });
      session.token = token.value.trim();
      await start();
    } catch (e) {
      clear(error, h("p", { class: "error" }, e.message));
      token.focus();
    }
  });
  clear(main, form);
  document.title = "Sign in – OpenTap";
  token.focus();
}

async function start() {
  const caps = await call("/capabilities");
  context = { caps, writer: caps.roles.includes("admin") || caps.roles.includes("member"),
    admin: caps.roles.includes("admin"), say };
  document.getElementById("device").textContent = `${caps.device} · ${caps.version}`;
  document.getElementById("who").textContent = `project ${caps.project} · ${caps.roles.join(", ")}`;
  nav.hidden = false;
  document.getElementById("signout").hidden = false;
  if (!location.hash || location.hash === "#/") location.hash = "#/overview";
  else route();
}

function route() {
  if (!context) return;
  stopPage();
  const [path, query] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  const page = parts[0] || "overview";
  for (const a of nav.querySelectorAll("a")) {
    if (a.dataset.page === page || (page === "capture" && a.dataset.page === "captures")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const pages = { overview, captures, capture, taas };
  const module = pages[page] || overview;
  clear(main, h("p", { class: "loading" }, "Loading…"));
  const arg = page === "capture" ? decodeURIComponent(parts.slice(1).join("/")) : null;
  stopPage = module.render(main, { ...context, params, arg }) || (() => {});
  main.focus({ preventScroll: true });
}

whenUnauthorized((error) => { session.token = null; signIn(error.message); });
document.getElementById("signout").addEventListener("click", () => { session.token = null; signIn(); });
window.addEventListener("hashchange", route);

if (session.token) start().catch((e) => signIn(e.message));
else signIn();
