/* MMM-Needlecare: the logic shared by the mirror page and the node_helper.
 *
 * Pure functions, no DOM and no MQTT: which topics a mirror uses, how a retained
 * profile state becomes the entries on screen, which words an entry's buttons use in
 * its person's language, and what a Done / Snooze / presence publishes. Loaded in the page through getScripts() (as window.NeedlecarePrompts)
 * and in Node through require().
 */
(function (root, factory) {
	if (typeof module === "object" && module.exports) {
		module.exports = factory();
	} else {
		root.NeedlecarePrompts = factory();
	}
})(typeof self !== "undefined" ? self : this, function () {
	"use strict";

	const SLUG = /^[a-z0-9_-]{1,64}$/;
	const SEVERITY_RANK = { critical: 2, warning: 1, info: 0 };
	const MAX_TEXT = 2000;
	/** The languages the module has words for (translations/<tag>.json), as Needlecare's. */
	const LANGUAGES = Object.freeze(["en", "de", "fr", "es", "nl"]);
	/** The module's options and their defaults (MMM-Needlecare.js repeats them for MagicMirror). */
	const DEFAULTS = Object.freeze({
		broker: "mqtt://localhost:1883",
		username: null,
		password: null,
		ca: null,
		cert: null,
		key: null,
		rejectUnauthorized: true,
		baseTopic: "needlecare",
		mirrorId: "mirror",
		profiles: [],
		snoozeMinutes: 30,
		alert: true
	});

	/** Whether `value` is a slug Needlecare accepts as a mirror or profile id. */
	function isSlug (value) {
		return typeof value === "string" && SLUG.test(value);
	}

	/**
	 * The module's options, checked: throws an Error naming the option at fault.
	 * @param {object} config the module's config from config.js (after defaults)
	 * @returns {object} {broker, baseTopic, mirrorId, profiles, snoozeMinutes}
	 */
	function checkedOptions (config) {
		const broker = String(config.broker || "");
		const url = /^(mqtts?|wss?):\/\/([^/?#]*)/.exec(broker);
		if (!url) {
			throw new Error(`broker ${JSON.stringify(broker)} must be an mqtt://, mqtts://, ws:// or wss:// URL`);
		}
		if (url[2].includes("@")) {
			throw new Error("broker must not hold credentials: set the username and password options");
		}
		const baseTopic = String(config.baseTopic || "");
		if (!baseTopic || /[#+\u0000]/.test(baseTopic) || baseTopic.endsWith("/")) {
			throw new Error(`baseTopic ${JSON.stringify(baseTopic)} is not a topic prefix`);
		}
		if (!isSlug(config.mirrorId)) {
			throw new Error(`mirrorId ${JSON.stringify(config.mirrorId)} must match [a-z0-9_-]{1,64}`);
		}
		const profiles = Array.isArray(config.profiles) ? config.profiles : [];
		if (profiles.length === 0 || !profiles.every(isSlug)) {
			throw new Error("profiles must list the Needlecare profile ids shown here, e.g. [\"alice\"]");
		}
		return {
			broker,
			baseTopic,
			mirrorId: config.mirrorId,
			profiles: [...new Set(profiles)],
			snoozeMinutes: clampMinutes(config.snoozeMinutes)
		};
	}

	/** Snooze minutes as Needlecare accepts them: a whole number from 1 to 1440. */
	function clampMinutes (value) {
		const minutes = Math.round(Number(value));
		if (!Number.isFinite(minutes)) return 30;
		return Math.min(1440, Math.max(1, minutes));
	}

	/**
	 * The topics of one mirror.
	 * @param {object} options from checkedOptions
	 * @returns {{state: Object<string, string>, notify: string, event: string}} state maps profile -> topic
	 */
	function topics (options) {
		const state = {};
		for (const profile of options.profiles) {
			state[profile] = `${options.baseTopic}/profile/${profile}/state`;
		}
		return {
			state,
			notify: `${options.baseTopic}/mirror/${options.mirrorId}/notify`,
			event: `${options.baseTopic}/mirror/${options.mirrorId}/event`
		};
	}

	/**
	 * A language tag's primary subtag if the module has words for it ("de-AT" -> "de").
	 * @param {*} value a BCP 47 tag, e.g. a profile state's `language`
	 * @returns {string|null} one of LANGUAGES, or null for anything else
	 */
	function languageTag (value) {
		if (typeof value !== "string") return null;
		const tag = value.trim().replace(/_/g, "-").split("-", 1)[0].toLowerCase();
		return LANGUAGES.includes(tag) ? tag : null;
	}

	/**
	 * The word for `key` in `language`, from the module's translation tables.
	 * @param {Object<string, Object<string, string>>|null} labels language -> key -> word
	 * @param {string|null} language a tag from languageTag (null: none known)
	 * @param {string} key e.g. "DONE"
	 * @returns {string|null} the word, or null when that language has none (the caller
	 *     falls back to MagicMirror's own language)
	 */
	function label (labels, language, key) {
		if (!labels || language === null || !Object.hasOwn(labels, language)) return null;
		const table = labels[language];
		if (!table || !Object.hasOwn(table, key)) return null;
		const word = table[key];
		return typeof word === "string" && word.length > 0 ? word : null;
	}

	function text (value) {
		return typeof value === "string" ? value.slice(0, MAX_TEXT) : "";
	}

	function prompt (raw) {
		if (!raw || typeof raw !== "object") return null;
		const reminderId = raw.reminder_id || raw.id;
		if (typeof reminderId !== "string" || reminderId.length === 0 || reminderId.length > 128) {
			return null;
		}
		const severity = Object.hasOwn(SEVERITY_RANK, raw.severity) ? raw.severity : "info";
		return {
			reminderId,
			kind: text(raw.kind),
			title: text(raw.title),
			message: text(raw.message),
			severity,
			dueAt: text(raw.due_at),
			expiresAt: typeof raw.expires_at === "string" ? raw.expires_at : null,
			actions: Array.isArray(raw.actions) ? raw.actions.filter((a) => a === "ack" || a === "snooze") : ["ack", "snooze"]
		};
	}

	/**
	 * A retained profile state (the payload's text) as what the mirror needs of it.
	 * An empty payload means nothing is known: no prompts. Throws on malformed JSON.
	 * @param {string} profile the profile whose state topic it came from
	 * @param {string} payload the MQTT payload as text
	 * @returns {{profile: string, displayName: string, language: string|null, prompts: object[]}}
	 *     the state; language is the person's (null when the state names none the module knows)
	 */
	function parseState (profile, payload) {
		if (payload.length === 0) return { profile, displayName: profile, language: null, prompts: [] };
		const raw = JSON.parse(payload);
		if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
			throw new Error("a profile state is a JSON object");
		}
		const displayName = text(raw.display_name) || profile;
		const list = Array.isArray(raw.open_prompts) ? raw.open_prompts : [];
		const prompts = list.map(prompt).filter((p) => p !== null);
		return { profile, displayName, language: languageTag(raw.language), prompts };
	}

	function expired (entry, now) {
		if (entry.expiresAt === null) return false;
		const at = Date.parse(entry.expiresAt);
		return Number.isFinite(at) && at <= now;
	}

	/**
	 * The entries to show: every open prompt of the given states, one per reminder id,
	 * expired ones left out, most severe first, then by the order of `profiles`, then
	 * the most recently due first.
	 * @param {Object<string, object>} states profile -> parsed state
	 * @param {string[]} profiles the configured order of people
	 * @param {number} now milliseconds since the epoch
	 * @returns {object[]} entries: the prompt's fields plus profile, displayName and language
	 */
	function visiblePrompts (states, profiles, now) {
		const byId = new Map();
		profiles.forEach((profile, order) => {
			const state = states[profile];
			if (!state) return;
			for (const entry of state.prompts) {
				if (byId.has(entry.reminderId) || expired(entry, now)) continue;
				byId.set(entry.reminderId, { ...entry, profile, displayName: state.displayName, language: state.language ?? null, order });
			}
		});
		return [...byId.values()].sort(
			(a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity]
				|| a.order - b.order
				|| (Date.parse(b.dueAt) || 0) - (Date.parse(a.dueAt) || 0)
				|| (a.reminderId < b.reminderId ? -1 : 1)
		);
	}

	/**
	 * The mirror event for a press or a presence, as Needlecare's contract has it.
	 * @param {string} type "ack", "snooze" or "presence"
	 * @param {object} fields {mirrorId, profile, reminderId?, minutes?, uniqueId}
	 * @returns {object} the event (event_id is the mirror id and `uniqueId`)
	 */
	function mirrorEvent (type, fields) {
		if (!isSlug(fields.profile)) throw new Error("the event's profile is not a slug");
		const event = { event_id: `${fields.mirrorId}-${fields.uniqueId}`, type, profile: fields.profile };
		if (type === "presence") return event;
		if (type !== "ack" && type !== "snooze") throw new Error(`unknown mirror event ${type}`);
		if (typeof fields.reminderId !== "string" || fields.reminderId.length === 0 || fields.reminderId.length > 128) {
			throw new Error("the event needs a reminder id");
		}
		event.reminder_id = fields.reminderId;
		if (type === "snooze") event.minutes = clampMinutes(fields.minutes);
		return event;
	}

	/** Whether an entry should raise MagicMirror's modal alert. */
	function alerts (entry) {
		return entry.severity === "warning" || entry.severity === "critical";
	}

	return { DEFAULTS, LANGUAGES, SEVERITY_RANK, alerts, checkedOptions, clampMinutes, isSlug, label, languageTag, mirrorEvent, parseState, topics, visiblePrompts };
});
