/* MMM-MQTTbridge: MQTT -> MagicMirror notifications, for Needlecare.
 *
 * Copy to MagicMirror/modules/MMM-MQTTbridge/dict/mqttDictionary.js and set MIRROR_ID
 * to the id this mirror has in Needlecare's configuration (mirrors: <id>).
 *
 * Needlecare publishes each reminder on needlecare/mirror/<id>/notify as JSON
 * ({"id", "reminder_id", "profile", "title", "message", "severity", "timer"?, ...}).
 * The hook turns it into MagicMirror's SHOW_ALERT (title, message, timer in ms; no
 * timer: it stays until dismissed), a modal alert for warnings and a small
 * notification for info, and also sends NEEDLECARE_PROMPT with the whole JSON, for a
 * module that offers Done / Snooze (see notiDictionary.js).
 *
 * valueFormat is evaluated by the bridge in the browser with the MQTT payload text in
 * `value`: eval(eval("`" + valueFormat + "`")). The template below turns it into the
 * JavaScript text of an object literal; the second eval makes the object.
 */

const MIRROR_ID = "hallway";
const BASE_TOPIC = "needlecare";
const NOTIFY_TOPIC = `${BASE_TOPIC}/mirror/${MIRROR_ID}/notify`;

const SHOW_ALERT_FORMAT =
  "(${JSON.stringify((function (n) {" +
  " var alert = {type: n.severity === \"info\" ? \"notification\" : \"alert\"," +
  " title: n.title, message: n.message, imageFA: \"spa\"};" +
  " if (typeof n.timer === \"number\") { alert.timer = n.timer; }" +
  " return alert;" +
  " })(JSON.parse(value)))})";

// Parsed and serialised again, never evaluated as it came: the payload is data.
const PROMPT_FORMAT = "(${JSON.stringify(JSON.parse(value))})";

const mqttHook = [
  {
    mqttTopic: NOTIFY_TOPIC,
    // QoS 1: the broker keeps a reminder for the mirror while the bridge reconnects.
    qos: 1,
    mqttPayload: [
      { valueFormat: SHOW_ALERT_FORMAT, mqttNotiCmd: ["needlecare_show_alert"] },
      { valueFormat: PROMPT_FORMAT, mqttNotiCmd: ["needlecare_prompt"] },
    ],
  },
];

const mqttNotiCommands = [
  // No notiPayload: the formatted value is the notification's payload.
  { commandId: "needlecare_show_alert", notiID: "SHOW_ALERT" },
  { commandId: "needlecare_prompt", notiID: "NEEDLECARE_PROMPT" },
];

module.exports = { mqttHook, mqttNotiCommands };
