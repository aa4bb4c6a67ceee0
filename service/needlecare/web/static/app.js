// Needlecare web app: plain JavaScript, no build step, no library. Every URL is
// relative to the page's <base>, which carries Home Assistant's ingress prefix.
"use strict";

const page = document.body.dataset.page;
const content = document.getElementById("content");
const statusLine = document.getElementById("status");
// The page's language, each profile's, and their words (docs/i18n.md): a profile's
// card speaks the profile's language; everything else the page's.
const I18N = JSON.parse((document.getElementById("i18n") || {}).textContent || "{}");

function t(key, lang, values) {
  const table = ((I18N.strings || {})[lang || I18N.lang]) || {};
  let text = table[key] || key;
  for (const [name, value] of Object.entries(values || {})) text = text.split(`{${name}}`).join(String(value));
  return text;
}

function langOf(profile) {
  return (I18N.profiles || {})[profile] || I18N.lang || "en";
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, options) {
  const response = await fetch(path, {
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    credentials: "same-origin",
    ...options,
  });
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && body.detail;
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail || response.status));
  }
  return body;
}

function say(text, isError) {
  statusLine.textContent = text;
  statusLine.className = isError ? "error" : "muted";
}

function when(iso, lang) {
  if (!iso) return "–";
  const locale = lang ? (I18N.locales || {})[lang] : undefined;
  return new Date(iso).toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" });
}

function left(iso, lang) {
  const ms = new Date(iso) - Date.now();
  if (ms <= 0) return t("ended", lang);
  const hours = Math.floor(ms / 3600000);
  const days = Math.floor(hours / 24);
  return days > 0 ? t("left_days", lang, { days, hours: hours % 24 })
    : t("left_hours", lang, { hours, minutes: Math.floor(ms / 60000) % 60 });
}

// -- overview ---------------------------------------------------------------------

function promptItem(prompt, lang) {
  const id = prompt.reminder_id || prompt.id;
  const minutes = el("select", { "aria-label": t("snooze_for", lang, { title: prompt.title }) },
    [10, 30, 60, 120, 480].map((m) => el("option", { value: m }, m < 60 ? `${m} min` : `${m / 60} h`)));
  minutes.value = "30";
  const item = el("div", { class: `prompt ${prompt.severity}`, "data-reminder": id },
    el("div", { class: "title" }, el("strong", {}, prompt.title)),
    prompt.message ? el("div", {}, prompt.message) : null,
    el("div", { class: "muted" }, `${prompt.kind} · ${t("due", lang, { when: when(prompt.due_at, lang) })}`),
    el("div", { class: "actions" },
      el("button", { type: "button", onclick: () => act(item, id, "ack", null, lang) }, t("done", lang)),
      minutes,
      el("button", { type: "button", class: "secondary",
        onclick: () => act(item, id, "snooze", { minutes: Number(minutes.value) }, lang) }, t("snooze", lang))));
  return item;
}

async function act(item, id, verb, body, lang) {
  item.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  try {
    await api(`api/v1/reminders/${encodeURIComponent(id)}/${verb}`, {
      method: "POST", body: body ? JSON.stringify(body) : null,
    });
    item.remove();
    say(verb === "ack" ? t("acked", lang) : t("snoozed", lang));
  } catch (error) {
    item.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    say(t(verb === "ack" ? "not_acked" : "not_snoozed", lang, { error: error.message }), true);
  }
}

function profileCard(state) {
  const lang = langOf(state.profile);
  const names = (r) => (r.ingredients || []).map((name) => t(`ingredient.${name}`, lang).replace(`ingredient.${name}`, name));
  const restrictions = (state.restrictions || []).map((r) =>
    el("li", {}, `${t("avoid_until", lang, {
      name: t(`restriction.${r.name}`, lang).replace(`restriction.${r.name}`, r.name.replace("_", " ")),
      ingredients: names(r).join(", ") || t("actives", lang), when: when(r.until, lang) })} `,
    el("span", { class: "muted", "data-until": r.until, "data-lang": lang }, `(${left(r.until, lang)})`)));
  const prompts = state.open_prompts || [];
  return el("section", { class: "card", lang, "aria-labelledby": `p-${state.profile}`, "data-profile": state.profile },
    el("h2", { id: `p-${state.profile}` }, state.display_name || state.profile, " ",
      el("span", { class: `badge ${state.status}` }, t(`status.${state.status}`, lang))),
    el("dl", {},
      el("dt", {}, t("recovery_day", lang)), el("dd", {}, state.recovery_day ?? "–"),
      el("dt", {}, t("last_session", lang)), el("dd", {}, when(state.last_session_at, lang)),
      el("dt", {}, t("next_window", lang)),
      el("dd", {}, state.next_window_start ? `${when(state.next_window_start, lang)} – ${when(state.next_window_end, lang)}` : "–")),
    restrictions.length ? el("ul", {}, restrictions) : el("p", { class: "muted" }, t("no_restrictions", lang)),
    prompts.length ? prompts.map((prompt) => promptItem(prompt, lang)) : el("p", { class: "muted" }, t("no_prompts", lang)));
}

async function overview() {
  const states = await api("api/v1/profiles");
  content.replaceChildren(states.length
    ? el("div", { class: "cards" }, states.map(profileCard))
    : el("p", {}, t("no_profiles")));
}

// -- timeline, sessions ------------------------------------------------------------

function profilePicker(onchange) {
  const select = el("select", { id: "profile", onchange });
  select.append(el("option", { value: "" }, t("everyone")));
  return select;
}

async function fillProfiles(select, withEveryone) {
  const states = await api("api/v1/profiles");
  if (!withEveryone) select.replaceChildren();
  for (const s of states) select.append(el("option", { value: s.profile }, s.display_name || s.profile));
  return states;
}

let timelineProfile = "";
async function timeline() {
  const query = timelineProfile ? `?profile=${encodeURIComponent(timelineProfile)}` : "";
  const [sessions, reminders] = await Promise.all([
    api(`api/v1/sessions${query}${query ? "&" : "?"}limit=50`),
    api(`api/v1/reminders${query}${query ? "&" : "?"}limit=100`),
  ]);
  const rows = [
    ...sessions.map((s) => ({ at: s.ended_at || s.started_at, text: t("session_row", null, { setting: s.setting, status: s.status }), who: s.profile, id: s.id })),
    ...reminders.map((r) => ({ at: r.due_at, text: `${r.title} — ${r.status}`, who: r.profile, id: r.id })),
  ].filter((r) => r.at).sort((a, b) => (a.at < b.at ? 1 : -1));
  const picker = profilePicker((e) => { timelineProfile = e.target.value; timeline().catch(fail); });
  await fillProfiles(picker, true);
  picker.value = timelineProfile;
  content.replaceChildren(
    el("label", { for: "profile" }, t("profile")), picker,
    rows.length ? el("ul", { class: "list" }, rows.map((r) =>
      el("li", {}, el("strong", {}, when(r.at)), " · ", r.who, el("div", {}, r.text)))) : el("p", {}, t("nothing_yet")));
}

async function sessionsPage() {
  const profile = el("select", { id: "log-profile", name: "profile", required: true });
  await fillProfiles(profile, false);
  const form = el("form", { class: "card", "aria-labelledby": "log-title" },
    el("h2", { id: "log-title" }, t("log_title")),
    el("label", { for: "log-profile" }, t("profile")), profile,
    el("label", { for: "log-setting" }, t("setting")),
    el("select", { id: "log-setting", name: "setting" },
      el("option", { value: "home" }, t("home")), el("option", { value: "professional" }, t("professional"))),
    el("label", { for: "log-at" }, t("ended_at")),
    el("input", { id: "log-at", name: "at", type: "datetime-local" }),
    el("label", { for: "log-depth" }, t("depth_mm")),
    el("input", { id: "log-depth", name: "depth", type: "number", min: "0.1", max: "3", step: "0.05" }),
    el("button", { type: "submit" }, t("log_session")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { profile: data.get("profile"), setting: data.get("setting") };
    if (data.get("at")) body.timestamp = new Date(data.get("at")).toISOString();
    if (data.get("depth")) body.needle_depth_mm = Number(data.get("depth"));
    try {
      const created = await api("api/v1/sessions", { method: "POST", body: JSON.stringify(body) });
      say(t("logged", null, { id: created.id }));
      await listSessions(list);
    } catch (error) { say(t("not_logged", null, { error: error.message }), true); }
  });
  const list = el("ul", { class: "list", "aria-label": t("recent_sessions") });
  content.replaceChildren(form, el("h2", {}, t("recent_sessions")), list);
  await listSessions(list);
}

async function listSessions(list) {
  const sessions = await api("api/v1/sessions?limit=30");
  list.replaceChildren(...sessions.map((s) => {
    const reason = el("input", { type: "text", "aria-label": t("reason_to_void", null, { id: s.id }), placeholder: t("reason"), maxlength: "128" });
    const voidButton = el("button", { type: "button", class: "secondary", onclick: async () => {
      try {
        const body = reason.value ? { reason: reason.value } : {};
        await api(`api/v1/sessions/${encodeURIComponent(s.id)}/void`, { method: "POST", body: JSON.stringify(body) });
        say(t("voided", null, { id: s.id }));
        await listSessions(list);
      } catch (error) { say(t("not_voided", null, { error: error.message }), true); }
    } }, t("void"));
    return el("li", {}, el("strong", {}, when(s.ended_at || s.started_at)), ` · ${s.profile} · ${s.setting} · ${s.status}`,
      el("div", { class: "muted" }, s.id),
      s.status === "voided" ? null : el("div", { class: "actions" }, reason, voidButton));
  }));
}

// -- skin checks, dead letters, config ------------------------------------------------

function chart(points) {
  // Checks at even spacing (they come days apart, or several in one evening), with the
  // first and last date under the axis.
  const w = 360, h = 190, pad = 30;
  const step = points.length > 1 ? (w - 2 * pad) / (points.length - 1) : 0;
  const x = (i) => pad + (points.length > 1 ? i * step : (w - 2 * pad) / 2);
  const y = (v) => h - pad - (v / 100) * (h - 2 * pad);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", t("chart_label", null, { n: points.length }));
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
  };
  const day = (p) => new Date(p.checked_at).toLocaleDateString(undefined, { month: "short", day: "numeric" });
  add("line", { class: "axis", x1: pad, y1: h - pad, x2: w - pad, y2: h - pad });
  add("line", { class: "axis", x1: pad, y1: pad, x2: pad, y2: h - pad });
  add("text", { x: 2, y: pad + 4 }, "100");
  add("text", { x: 14, y: h - pad + 4 }, "0");
  add("text", { x: pad, y: h - 8 }, day(points[0]));
  if (points.length > 1) add("text", { x: w - pad, y: h - 8, "text-anchor": "end" }, day(points[points.length - 1]));
  add("polyline", { class: "line", points: points.map((p, i) => `${x(i)},${y(p.redness)}`).join(" ") });
  points.forEach((p, i) => add("circle", { class: "dot", cx: x(i), cy: y(p.redness), r: 4 }));
  return svg;
}

let skinProfile = "";
async function skin() {
  const picker = profilePicker((e) => { skinProfile = e.target.value; skin().catch(fail); });
  const states = await fillProfiles(picker, false);
  skinProfile = skinProfile || (states[0] && states[0].profile) || "";
  picker.value = skinProfile;
  const checks = skinProfile ? await api(`api/v1/skin-checks?profile=${encodeURIComponent(skinProfile)}`) : [];
  content.replaceChildren(
    el("label", { for: "profile" }, t("profile")), picker,
    checks.length ? el("div", { class: "card" }, chart(checks)) : el("p", {}, t("no_skin_checks")),
    checks.length ? el("ul", { class: "list" }, checks.slice(-10).reverse().map((c) =>
      el("li", {}, t("redness_line", null, { when: when(c.checked_at), redness: c.redness }), c.note ? ` — ${c.note}` : ""))) : null,
    el("p", {}, el("a", { href: `report?profile=${encodeURIComponent(skinProfile)}` }, t("full_report"))));
}

async function deadLetters() {
  const letters = await api("api/v1/dead-letters");
  content.replaceChildren(letters.length ? el("ul", { class: "list" }, letters.slice(0, 200).map((d) =>
    el("li", {}, el("strong", {}, when(d.received_at)), ` · ${d.topic}`,
      el("div", {}, d.reason), el("pre", {}, d.payload_excerpt))))
    : el("p", {}, t("no_dead_letters")));
}

async function configPage() {
  const check = await api("api/v1/config/check");
  content.replaceChildren(el("div", { class: "card" },
    el("p", {}, check.summary),
    check.warnings.length ? el("ul", {}, check.warnings.map((w) => el("li", {}, w)))
      : el("p", {}, t("no_warnings"))));
}

// `code` spans of the OpenAPI descriptions as <code>, the rest as text.
function prose(text) {
  return (text || "").split("`").map((part, i) => (i % 2 ? el("code", {}, part) : part));
}

async function docs() {
  const spec = await api("api/openapi.json");
  content.replaceChildren(el("p", {}, prose(spec.info.description)),
    ...Object.entries(spec.paths).flatMap(([path, ops]) => Object.entries(ops).map(([verb, op]) =>
      el("section", { class: "card" },
        el("h2", {}, `${verb.toUpperCase()} ${path}`),
        el("p", {}, op.summary || ""), op.description ? el("p", { class: "muted" }, prose(op.description)) : null,
        (op.parameters || []).length ? el("dl", {}, op.parameters.flatMap((p) => [
          el("dt", {}, `${p.name} (${p.in})`),
          el("dd", {}, `${p.description || ""}${p.example !== undefined ? ` e.g. ${p.example}` : ""}`)])) : null,
        op.requestBody ? el("pre", {}, JSON.stringify(exampleBody(spec, op.requestBody), null, 2)) : null))));
}

function exampleBody(spec, body) {
  const ref = body.content["application/json"].schema.$ref
    || (body.content["application/json"].schema.anyOf || [{}])[0].$ref;
  const schema = ref ? spec.components.schemas[ref.split("/").pop()] : {};
  return (schema.examples || [{}])[0];
}

// -- wiring ----------------------------------------------------------------------------

const renderers = { overview, timeline, sessions: sessionsPage, skin, "dead-letters": deadLetters, config: configPage, docs };
const render = renderers[page];

function fail(error) { say(t("not_loaded", null, { error: error.message }), true); }

let pending = null;
function refresh() {
  // Several events arrive together after one change: render once, and give the keyboard
  // focus back to the same control (the same prompt's button, the same picker).
  clearTimeout(pending);
  pending = setTimeout(async () => {
    const focused = document.activeElement;
    const holder = focused && focused.closest("[data-reminder]");
    const key = holder ? holder.dataset.reminder : null;
    const label = focused ? focused.textContent : null;
    const id = focused && focused.id;
    try { await render(); } catch (error) { fail(error); return; }
    const again = key
      ? [...document.querySelectorAll(`[data-reminder="${CSS.escape(key)}"] button, [data-reminder="${CSS.escape(key)}"] select`)]
          .find((node) => node.textContent === label)
      : id && document.getElementById(id);
    if (again) again.focus();
  }, 150);
}

if (render) {
  render().catch(fail);
  if (page !== "docs" && page !== "sessions" && window.EventSource) {
    const events = new EventSource("api/v1/events");
    for (const kind of ["reminder", "session", "state"]) events.addEventListener(kind, refresh);
    window.addEventListener("pagehide", () => events.close());
  }
  setInterval(() => {
    document.querySelectorAll("[data-until]").forEach((n) => { n.textContent = `(${left(n.dataset.until, n.dataset.lang)})`; });
  }, 30000);
}
