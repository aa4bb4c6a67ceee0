/* global Log, Module, NeedlecarePrompts */

/* MMM-Needlecare: Needlecare's aftercare prompts on a MagicMirror², with Done / Snooze.
 *
 * What is shown is what the retained profile states say (sent by node_helper.js):
 * every open prompt of the configured profiles, one entry per reminder id, labelled
 * with the person's display name, most severe first. An entry's buttons are worded in
 * its person's language (the state's `language`, with the module's translations the
 * helper sends), else in MagicMirror's; words not tied to a person ("reconnecting")
 * follow MagicMirror's `language`. Text is always set as text
 * (textContent), never parsed as HTML. Done and Snooze publish Needlecare mirror
 * events; an entry goes away when the state no longer lists it, whichever channel
 * answered it. A NEEDLECARE_PRESENCE notification ({profile}) from another module is
 * relayed as a presence event.
 */
Module.register("MMM-Needlecare", {
	// The same as NeedlecarePrompts.DEFAULTS (prompts.js), which the helper uses.
	defaults: {
		broker: "mqtt://localhost:1883",
		username: null,
		password: null,
		ca: null, // for mqtts://: path of the CA certificate file on the MagicMirror host
		cert: null, // for mqtts:// with client certificates: certificate file
		key: null, // ... and its private key file
		rejectUnauthorized: true,
		baseTopic: "needlecare",
		mirrorId: "mirror",
		profiles: [],
		snoozeMinutes: 30,
		alert: true // raise MagicMirror's modal alert for a new warning or critical prompt
	},

	PENDING_MS: 15000,
	AWAIT_STATE_MS: 30000,
	TICK_MS: 10000,
	ALERT_SETTLE_MS: 300,

	getScripts () {
		return [this.file("prompts.js")];
	},

	getStyles () {
		return [this.file("MMM-Needlecare.css")];
	},

	// MagicMirror's own translations: its `language`, for module-wide words and for an
	// entry whose state names no language the module knows.
	getTranslations () {
		return {
			en: "translations/en.json",
			de: "translations/de.json",
			es: "translations/es.json",
			fr: "translations/fr.json",
			nl: "translations/nl.json"
		};
	},

	start () {
		this.states = {};
		this.labels = null; // language -> key -> word, from the helper
		this.pending = new Map(); // reminder id -> timeout of a press not yet answered
		this.awaiting = new Map(); // reminder id -> when a notify announced it
		this.alerted = new Set();
		this.alertFor = null;
		this.alertTimer = null;
		this.connected = null; // unknown until the helper says
		this.error = null;
		try {
			this.options = NeedlecarePrompts.checkedOptions(this.config);
		} catch (error) {
			this.error = error.message;
			Log.error(`[MMM-Needlecare] ${error.message}`);
			return;
		}
		// The helper connected when MagicMirror started; on every (re)connection of
		// this page to MagicMirror (a restart included) ask it for what it knows.
		const socket = this.socket().socket;
		const ask = () => this.sendSocketNotification("NEEDLECARE_START", { mirrorId: this.options.mirrorId });
		socket.on("connect", ask);
		socket.on("disconnect", () => {
			this.connected = false;
			this.updateDom(0);
		});
		if (socket.connected) ask();
		this.entries = [];
		setInterval(() => this.refresh(), this.TICK_MS); // drops prompts that expired
	},

	socketNotificationReceived (notification, payload) {
		if (this.error || !payload || payload.mirrorId !== this.options.mirrorId) return;
		if (notification === "NEEDLECARE_LABELS") {
			this.labels = payload.labels;
			this.updateDom(0);
		} else if (notification === "NEEDLECARE_STATE") {
			this.states[payload.profile] = payload.state;
			this.refresh();
		} else if (notification === "NEEDLECARE_NOTIFY") {
			this.awaiting.set(payload.reminderId, Date.now());
			this.refresh();
		} else if (notification === "NEEDLECARE_CONNECTION") {
			this.connected = payload.connected;
			this.updateDom(0);
		} else if (notification === "NEEDLECARE_NOT_SENT") {
			this.settle(payload.reminderId);
		} else if (notification === "NEEDLECARE_ERROR") {
			this.error = payload.error;
			this.updateDom(0);
		}
	},

	notificationReceived (notification, payload) {
		if (notification !== "NEEDLECARE_PRESENCE" || this.error) return;
		if (!payload || !NeedlecarePrompts.isSlug(payload.profile)) {
			Log.warn("[MMM-Needlecare] NEEDLECARE_PRESENCE needs {profile: <profile id>}");
			return;
		}
		this.sendSocketNotification("NEEDLECARE_PRESENCE", { mirrorId: this.options.mirrorId, profile: payload.profile });
	},

	/** Recompute the entries from the states; redraw and open or close the alert. */
	refresh () {
		const entries = NeedlecarePrompts.visiblePrompts(this.states, this.options.profiles, Date.now());
		const shown = new Set(entries.map((entry) => entry.reminderId));
		for (const id of this.pending.keys()) {
			if (!shown.has(id)) this.settle(id, false);
		}
		this.entries = entries;
		this.updateAlert(entries, shown);
		this.updateDom(0);
	},

	updateAlert (entries, shown) {
		const now = Date.now();
		for (const [id, at] of this.awaiting) {
			if (now - at > this.AWAIT_STATE_MS) this.awaiting.delete(id);
		}
		if (this.alertFor !== null && !shown.has(this.alertFor)) {
			this.sendNotification("HIDE_ALERT");
			this.alertFor = null;
		}
		// Prompts come in bursts (a session's, two people's): one alert per burst, after
		// it settled; MagicMirror's alert module renders asynchronously and would show
		// two alerts sent back to back.
		clearTimeout(this.alertTimer);
		if (this.config.alert) this.alertTimer = setTimeout(() => this.raiseAlert(), this.ALERT_SETTLE_MS);
	},

	/** MagicMirror's modal alert, as text, for the most severe new warning or critical prompt. */
	raiseAlert () {
		const fresh = this.entries.filter((entry) => this.awaiting.has(entry.reminderId)
			&& !this.alerted.has(entry.reminderId) && NeedlecarePrompts.alerts(entry));
		if (fresh.length === 0) return;
		for (const entry of fresh) {
			this.awaiting.delete(entry.reminderId);
			this.alerted.add(entry.reminderId);
		}
		this.alertFor = fresh[0].reminderId;
		this.sendNotification("SHOW_ALERT", {
			type: "alert",
			title: `${fresh[0].displayName}: ${fresh[0].title}`,
			message: fresh[0].message,
			titleType: "text",
			messageType: "text"
		});
	},

	answer (entry, action) {
		if (this.pending.has(entry.reminderId)) return;
		const timeout = setTimeout(() => this.settle(entry.reminderId), this.PENDING_MS);
		this.pending.set(entry.reminderId, timeout);
		this.sendSocketNotification(action === "ack" ? "NEEDLECARE_ACK" : "NEEDLECARE_SNOOZE", {
			mirrorId: this.options.mirrorId,
			profile: entry.profile,
			reminderId: entry.reminderId
		});
		this.updateDom(0);
	},

	/** A press is answered (or given up on): its buttons work again. */
	settle (reminderId, redraw = true) {
		clearTimeout(this.pending.get(reminderId));
		if (this.pending.delete(reminderId) && redraw) this.updateDom(0);
	},

	getDom () {
		const root = needlecareElement("div", "needlecare");
		if (this.error) {
			root.append(needlecareElement("div", "needlecare-error small", `Needlecare: ${this.error}`));
			return root;
		}
		if (this.connected === false) {
			root.append(needlecareElement("div", "needlecare-status xsmall dimmed", this.translate("RECONNECTING")));
		}
		const list = needlecareElement("ul", "needlecare-prompts");
		for (const entry of this.entries || []) list.append(this.entryDom(entry));
		root.append(list);
		return root;
	},

	entryDom (entry) {
		const pending = this.pending.has(entry.reminderId);
		const item = needlecareElement("li", `needlecare-prompt needlecare-${entry.severity}${pending ? " needlecare-pending" : ""}`);
		item.dataset.reminderId = entry.reminderId;
		item.dataset.profile = entry.profile;
		item.dataset.kind = entry.kind;
		item.dataset.severity = entry.severity;
		if (entry.language) item.lang = entry.language;
		const heading = needlecareElement("div", "needlecare-heading");
		heading.append(needlecareElement("span", "needlecare-name", entry.displayName), needlecareElement("span", "needlecare-title bright", entry.title));
		item.append(heading);
		if (entry.message) item.append(needlecareElement("p", "needlecare-message small", entry.message));
		const actions = needlecareElement("div", "needlecare-actions");
		for (const [action, label] of [["ack", "DONE"], ["snooze", "SNOOZE"]]) {
			if (!entry.actions.includes(action)) continue;
			const button = needlecareElement("button", `needlecare-${action}`, this.entryWord(entry, label));
			button.type = "button";
			button.disabled = pending;
			button.addEventListener("click", () => this.answer(entry, action));
			actions.append(button);
		}
		item.append(actions);
		return item;
	},

	/** A word of one person's entry: in that person's language, else MagicMirror's. */
	entryWord (entry, key) {
		return NeedlecarePrompts.label(this.labels, entry.language, key) ?? this.translate(key);
	}
});

/** A new element with a class and, optionally, text: always text, never markup. */
function needlecareElement (tag, className, text) {
	const node = document.createElement(tag);
	node.className = className;
	if (text !== undefined) node.textContent = text;
	return node;
}
