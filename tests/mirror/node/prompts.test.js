// MMM-Needlecare's shared logic (prompts.js) under Node's own test runner.
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const test = require("node:test");
const vm = require("node:vm");

const MODULE_DIR = path.resolve(__dirname, "../../../deploy/magicmirror/MMM-Needlecare");
const logic = require(path.join(MODULE_DIR, "prompts.js"));

const OPTIONS = {
	...logic.DEFAULTS,
	broker: "mqtt://broker.local:1883",
	mirrorId: "hallway",
	profiles: ["alice", "bob"]
};

function state (profile, displayName, prompts) {
	return logic.parseState(profile, JSON.stringify({ profile, display_name: displayName, open_prompts: prompts }));
}

function prompt (id, severity, dueAt, extra = {}) {
	return { id, reminder_id: id, kind: "soothe", title: `title ${id}`, message: "m", severity, due_at: dueAt, expires_at: null, actions: ["ack", "snooze"], ...extra };
}

test("checkedOptions accepts the README's config", () => {
	const options = logic.checkedOptions(OPTIONS);
	assert.deepEqual(
		{ broker: "mqtt://broker.local:1883", baseTopic: "needlecare", mirrorId: "hallway", profiles: ["alice", "bob"], snoozeMinutes: 30 },
		options
	);
});

test("checkedOptions refuses credentials in the URL, bad ids, no profiles and wildcards", () => {
	const bad = [
		[{ broker: "mqtt://u:p@broker.local" }, /must not hold credentials/],
		[{ broker: "http://broker.local" }, /must be an mqtt/],
		[{ mirrorId: "Hall Way" }, /mirrorId/],
		[{ profiles: [] }, /profiles/],
		[{ profiles: ["alice", "../x"] }, /profiles/],
		[{ baseTopic: "needlecare/#" }, /baseTopic/],
		[{ baseTopic: "needlecare/" }, /baseTopic/]
	];
	for (const [change, message] of bad) {
		assert.throws(() => logic.checkedOptions({ ...OPTIONS, ...change }), message);
	}
});

test("snooze minutes are kept between 1 and 1440", () => {
	assert.deepEqual([1, 30, 1440, 30, 45], [0, 30, 9999, "soon", 44.6].map(logic.clampMinutes));
});

test("topics follow the contract under the base topic", () => {
	const topics = logic.topics(logic.checkedOptions({ ...OPTIONS, baseTopic: "home/nc" }));
	assert.deepEqual(
		{
			state: { alice: "home/nc/profile/alice/state", bob: "home/nc/profile/bob/state" },
			notify: "home/nc/mirror/hallway/notify",
			event: "home/nc/mirror/hallway/event"
		},
		topics
	);
});

test("parseState keeps the display name and well-formed prompts, and drops the rest", () => {
	const parsed = state("alice", "Alice", [prompt("rem_a", "warning", "2026-03-01T19:15:00Z"), { title: "no id" }, null]);
	assert.equal("Alice", parsed.displayName);
	assert.deepEqual(["rem_a"], parsed.prompts.map((p) => p.reminderId));
	assert.deepEqual({ profile: "alice", displayName: "alice", language: null, prompts: [] }, logic.parseState("alice", ""));
	assert.equal("alice", state("alice", "", []).displayName);
	assert.throws(() => logic.parseState("alice", "[1]"), /JSON object/);
	assert.throws(() => logic.parseState("alice", "{"), SyntaxError);
});

test("parseState keeps the person's language as a primary tag the module has words for", () => {
	const withLanguage = (language) => logic.parseState("alice", JSON.stringify({ profile: "alice", language, open_prompts: [] })).language;
	assert.deepEqual(["de", "fr", "nl", "es", "en"], ["de", "fr-CA", "NL", "es_MX", "en"].map(withLanguage));
	assert.deepEqual([null, null, null, null], ["pt", "", 7, undefined].map(withLanguage));
});

test("languageTag: the primary subtag of a supported language, else null", () => {
	assert.deepEqual(["de", "de", "fr", null, null], ["de-AT", " DE ", "fr_CH", "deu", null].map(logic.languageTag));
});

test("label: the word in the person's language, null when that language or word is missing", () => {
	const labels = { de: { DONE: "Erledigt", SNOOZE: "" }, en: { DONE: "Done" } };
	assert.equal("Erledigt", logic.label(labels, "de", "DONE"));
	assert.equal("Done", logic.label(labels, "en", "DONE"));
	assert.equal(null, logic.label(labels, "de", "SNOOZE"));
	assert.equal(null, logic.label(labels, "de", "RECONNECTING"));
	assert.equal(null, logic.label(labels, "fr", "DONE"));
	assert.equal(null, logic.label(labels, null, "DONE"));
	assert.equal(null, logic.label(null, "de", "DONE"));
	assert.equal(null, logic.label(labels, "de", "toString"));
});

test("every language the module lists has a translation file with the same words as English", () => {
	const read = (language) => JSON.parse(fs.readFileSync(path.join(MODULE_DIR, "translations", `${language}.json`), "utf8"));
	const english = Object.keys(read("en")).sort();
	assert.deepEqual(["DONE", "RECONNECTING", "SNOOZE"], english);
	for (const language of logic.LANGUAGES) {
		const table = read(language);
		assert.deepEqual(english, Object.keys(table).sort(), language);
		assert.ok(Object.values(table).every((word) => typeof word === "string" && word.length > 0), language);
	}
	assert.deepEqual([...logic.LANGUAGES].sort(), fs.readdirSync(path.join(MODULE_DIR, "translations")).map((f) => f.replace(/\.json$/, "")).sort());
});

test("parseState treats an unknown severity as info", () => {
	assert.equal("info", state("alice", "Alice", [prompt("rem_a", "<b>", "2026-03-01T19:15:00Z")]).prompts[0].severity);
});

test("visiblePrompts: most severe first, then the configured order of people, then the newest", () => {
	const states = {
		alice: state("alice", "Alice", [prompt("a_info", "info", "2026-03-01T10:00:00Z"), prompt("a_warn", "warning", "2026-03-01T09:00:00Z")]),
		bob: state("bob", "Bob", [prompt("b_crit", "critical", "2026-03-01T08:00:00Z"), prompt("b_warn", "warning", "2026-03-01T11:00:00Z")])
	};
	const shown = logic.visiblePrompts(states, ["alice", "bob"], Date.parse("2026-03-01T12:00:00Z"));
	assert.deepEqual(["b_crit", "a_warn", "b_warn", "a_info"], shown.map((p) => p.reminderId));
	assert.deepEqual(["Bob", "Alice", "Bob", "Alice"], shown.map((p) => p.displayName));
});

test("visiblePrompts: each entry carries its own person's language", () => {
	const parse = (profile, language, id) => logic.parseState(profile, JSON.stringify({ profile, language, open_prompts: [prompt(id, "warning", "2026-03-01T09:00:00Z")] }));
	const states = { alice: parse("alice", "de", "rem_a"), bob: parse("bob", "en", "rem_b"), carol: parse("carol", undefined, "rem_c") };
	const shown = logic.visiblePrompts(states, ["alice", "bob", "carol"], Date.parse("2026-03-01T12:00:00Z"));
	assert.deepEqual([["rem_a", "de"], ["rem_b", "en"], ["rem_c", null]], shown.map((p) => [p.reminderId, p.language]));
});

test("visiblePrompts: one entry per reminder id, expired prompts left out", () => {
	const twice = prompt("rem_a", "warning", "2026-03-01T09:00:00Z");
	const gone = prompt("rem_old", "info", "2026-03-01T09:00:00Z", { expires_at: "2026-03-01T11:00:00Z" });
	const later = prompt("rem_later", "info", "2026-03-01T09:00:00Z", { expires_at: "2026-03-01T13:00:00Z" });
	const states = { alice: state("alice", "Alice", [twice, twice, gone, later]) };
	const shown = logic.visiblePrompts(states, ["alice"], Date.parse("2026-03-01T12:00:00Z"));
	assert.deepEqual(["rem_a", "rem_later"], shown.map((p) => p.reminderId));
});

test("visiblePrompts ignores states of profiles not shown on this mirror", () => {
	const states = { carol: state("carol", "Carol", [prompt("rem_c", "warning", "2026-03-01T09:00:00Z")]) };
	assert.deepEqual([], logic.visiblePrompts(states, ["alice"], Date.parse("2026-03-01T12:00:00Z")));
});

test("mirrorEvent builds the contract's ack, snooze and presence events", () => {
	const base = { mirrorId: "hallway", profile: "alice", reminderId: "rem_a", uniqueId: "u1" };
	assert.deepEqual(
		{ event_id: "hallway-u1", type: "ack", profile: "alice", reminder_id: "rem_a" },
		logic.mirrorEvent("ack", base)
	);
	assert.deepEqual(
		{ event_id: "hallway-u1", type: "snooze", profile: "alice", reminder_id: "rem_a", minutes: 1440 },
		logic.mirrorEvent("snooze", { ...base, minutes: 5000 })
	);
	assert.deepEqual({ event_id: "hallway-u1", type: "presence", profile: "alice" }, logic.mirrorEvent("presence", base));
	assert.throws(() => logic.mirrorEvent("ack", { ...base, reminderId: "" }), /reminder id/);
	assert.throws(() => logic.mirrorEvent("presence", { ...base, profile: "Alice Smith" }), /slug/);
	assert.throws(() => logic.mirrorEvent("dismiss", base), /unknown/);
});

test("only warnings and critical prompts raise the modal alert", () => {
	assert.deepEqual([false, true, true], ["info", "warning", "critical"].map((severity) => logic.alerts({ severity })));
});

test("MMM-Needlecare.js declares the same defaults as prompts.js", () => {
	let registered = null;
	const sandbox = { Module: { register: (name, definition) => { registered = { name, definition }; } } };
	vm.runInNewContext(fs.readFileSync(path.join(MODULE_DIR, "MMM-Needlecare.js"), "utf8"), sandbox);
	assert.equal("MMM-Needlecare", registered.name);
	// Compared as JSON: the sandbox's arrays belong to another realm.
	assert.deepEqual(JSON.parse(JSON.stringify(logic.DEFAULTS)), JSON.parse(JSON.stringify(registered.definition.defaults)));
});
