/* MMM-Needlecare: the server side, one MQTT client per mirror id.
 *
 * It reads its options from config.js itself (global.config) and connects when
 * MagicMirror starts, whether or not a page is open; credentials never travel to or
 * from the page. The client keeps a persistent session under a fixed client id
 * (needlecare-mirror-<mirrorId>), so the broker holds what arrives while MagicMirror
 * restarts, and reconnects by itself every few seconds while the broker is away. It
 * subscribes to the retained state of each profile shown here and to the mirror's
 * notify topic, keeps the last state of each profile (what a reloaded page is sent
 * first) and publishes the mirror's ack / snooze / presence events with QoS 1. It
 * also reads the module's translations/<language>.json once and hands them to the
 * page before any state, so each entry's buttons can follow its person's language.
 */
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const NodeHelper = require("node_helper");
const Log = require("logger");
const mqtt = require("mqtt");
const logic = require("./prompts.js");

const RECONNECT_MS = 2000;
const REFUSED_RECONNECT_MS = 60000; // a refused login is not retried every 2 s
const PAYLOAD_PREVIEW = 200;

module.exports = NodeHelper.create({
	/** Connect for every MMM-Needlecare entry of config.js at once, before any page loads. */
	start () {
		this.mirrors = new Map();
		this.errors = new Map();
		this.labels = readLabels();
		const entries = (global.config && global.config.modules) || [];
		for (const entry of entries) {
			if (entry.module !== this.name || entry.disabled) continue;
			const config = { ...logic.DEFAULTS, ...entry.config };
			try {
				this.startMirror(config);
			} catch (error) {
				this.errors.set(config.mirrorId, error.message);
				Log.error(`mirror ${config.mirrorId}: ${error.message}`);
			}
		}
	},

	stop () {
		for (const mirror of this.mirrors.values()) mirror.client.end(true);
		this.mirrors.clear();
	},

	socketNotificationReceived (notification, payload) {
		try {
			this.received(notification, payload || {});
		} catch (error) {
			// A press that cannot be sent: its buttons work again; the page carries on.
			Log.error(`${notification}: ${error.message}`);
			const { mirrorId, reminderId } = payload || {};
			this.sendSocketNotification("NEEDLECARE_NOT_SENT", { mirrorId, reminderId });
		}
	},

	received (notification, payload) {
		if (notification === "NEEDLECARE_START") {
			this.sendSnapshot(payload.mirrorId);
		} else if (notification === "NEEDLECARE_ACK") {
			this.publishEvent(payload, "ack");
		} else if (notification === "NEEDLECARE_SNOOZE") {
			this.publishEvent(payload, "snooze");
		} else if (notification === "NEEDLECARE_PRESENCE") {
			this.publishEvent(payload, "presence");
		}
	},

	startMirror (config) {
		const options = logic.checkedOptions(config);
		if (this.mirrors.has(options.mirrorId)) throw new Error("a second MMM-Needlecare entry has this mirrorId");
		const mirror = { options, topics: logic.topics(options), states: {}, connected: false };
		mirror.client = mqtt.connect(options.broker, this.clientOptions(config, options.mirrorId));
		this.mirrors.set(options.mirrorId, mirror);
		this.watch(mirror);
		Log.info(`mirror ${options.mirrorId}: connecting to ${options.broker} as ${mirror.client.options.clientId}`);
	},

	clientOptions (config, mirrorId) {
		const options = {
			clientId: `needlecare-mirror-${mirrorId}`,
			clean: false,
			protocolVersion: 4,
			keepalive: 30,
			connectTimeout: 5000,
			reconnectPeriod: RECONNECT_MS,
			resubscribe: false // subscribed on every connect, below
		};
		if (config.username) options.username = String(config.username);
		if (config.password) options.password = String(config.password);
		// mqtts:// : files on the MagicMirror host (a private CA; a client certificate if
		// the broker asks for one).
		if (config.ca) options.ca = fs.readFileSync(config.ca);
		if (config.cert) options.cert = fs.readFileSync(config.cert);
		if (config.key) options.key = fs.readFileSync(config.key);
		if (config.rejectUnauthorized === false) options.rejectUnauthorized = false;
		return options;
	},

	watch (mirror) {
		const { client, options } = mirror;
		client.on("connect", (connack) => {
			client.options.reconnectPeriod = RECONNECT_MS;
			const wanted = [...Object.values(mirror.topics.state), mirror.topics.notify];
			client.subscribe(wanted, { qos: 1 }, (error) => {
				if (error) Log.warn(`mirror ${options.mirrorId}: subscribe failed: ${error.message}`);
			});
			this.setConnected(mirror, true);
			Log.info(`mirror ${options.mirrorId}: connected (session present: ${connack.sessionPresent})`);
		});
		client.on("close", () => this.setConnected(mirror, false));
		client.on("error", (error) => {
			if (error.code === 4 || error.code === 5) client.options.reconnectPeriod = REFUSED_RECONNECT_MS;
			Log.warn(`mirror ${options.mirrorId}: ${error.message}`);
		});
		client.on("message", (topic, payload) => this.onMessage(mirror, topic, payload.toString("utf8")));
	},

	setConnected (mirror, connected) {
		if (mirror.connected === connected) return;
		mirror.connected = connected;
		if (!connected) Log.warn(`mirror ${mirror.options.mirrorId}: connection lost; trying again every ${RECONNECT_MS / 1000} s`);
		this.sendSocketNotification("NEEDLECARE_CONNECTION", { mirrorId: mirror.options.mirrorId, connected });
	},

	onMessage (mirror, topic, text) {
		const mirrorId = mirror.options.mirrorId;
		try {
			if (topic === mirror.topics.notify) {
				const note = JSON.parse(text);
				this.sendSocketNotification("NEEDLECARE_NOTIFY", { mirrorId, reminderId: String(note.reminder_id || note.id || "") });
				return;
			}
			const profile = Object.keys(mirror.topics.state).find((p) => mirror.topics.state[p] === topic);
			if (profile === undefined) return;
			mirror.states[profile] = logic.parseState(profile, text);
			this.sendSocketNotification("NEEDLECARE_STATE", { mirrorId, profile, state: mirror.states[profile] });
		} catch (error) {
			Log.warn(`mirror ${mirrorId}: ignored a bad payload on ${topic} (${error.message}): ${text.slice(0, PAYLOAD_PREVIEW)}`);
		}
	},

	/** What a page that just (re)loaded needs: the words, the connection and every known state. */
	sendSnapshot (mirrorId) {
		const mirror = this.mirrors.get(mirrorId);
		if (!mirror) {
			const error = this.errors.get(mirrorId) || `mirror ${mirrorId} is not in config.js`;
			this.sendSocketNotification("NEEDLECARE_ERROR", { mirrorId, error });
			return;
		}
		// Before the states, on the same socket: no entry is drawn without its words.
		this.sendSocketNotification("NEEDLECARE_LABELS", { mirrorId, labels: this.labels });
		this.sendSocketNotification("NEEDLECARE_CONNECTION", { mirrorId, connected: mirror.connected });
		for (const [profile, state] of Object.entries(mirror.states)) {
			this.sendSocketNotification("NEEDLECARE_STATE", { mirrorId, profile, state });
		}
	},

	publishEvent (payload, type) {
		const mirror = this.mirrors.get(payload.mirrorId);
		if (!mirror) throw new Error(`mirror ${payload.mirrorId} is not started`);
		const event = logic.mirrorEvent(type, {
			mirrorId: mirror.options.mirrorId,
			profile: payload.profile,
			reminderId: payload.reminderId,
			minutes: payload.minutes === undefined ? mirror.options.snoozeMinutes : payload.minutes,
			uniqueId: crypto.randomUUID()
		});
		// QoS 1: mqtt.js keeps it while the broker is away and sends it on reconnect.
		mirror.client.publish(mirror.topics.event, JSON.stringify(event), { qos: 1, retain: false }, (error) => {
			if (!error) return;
			Log.warn(`mirror ${mirror.options.mirrorId}: ${type} not sent: ${error.message}`);
			this.sendSocketNotification("NEEDLECARE_NOT_SENT", { mirrorId: mirror.options.mirrorId, reminderId: payload.reminderId });
		});
		Log.info(`mirror ${mirror.options.mirrorId}: ${type} ${event.reminder_id || event.profile} (${event.event_id})`);
	}
});

/** language -> key -> word, from translations/<language>.json; a file that cannot be read is left out. */
function readLabels () {
	const labels = {};
	for (const language of logic.LANGUAGES) {
		const file = path.join(__dirname, "translations", `${language}.json`);
		try {
			labels[language] = JSON.parse(fs.readFileSync(file, "utf8"));
		} catch (error) {
			Log.warn(`translations for ${language} not loaded (${error.message}); MagicMirror's language is used instead`);
		}
	}
	return labels;
}
