/* MMM-MQTTbridge: MagicMirror notifications -> MQTT, for Needlecare.
 *
 * Copy to MagicMirror/modules/MMM-MQTTbridge/dict/notiDictionary.js and set MIRROR_ID
 * as in mqttDictionary.js.
 *
 * Any module (a touch button, MMM-Remote-Control, a gesture module...) acknowledges or
 * snoozes a reminder by sending one of these notifications, with the reminder's id
 * (from the NEEDLECARE_PROMPT payload, field reminder_id):
 *
 *   this.sendNotification("NEEDLECARE_ACK", {reminder_id: "rem_4ae3...", profile: "alice"});
 *   this.sendNotification("NEEDLECARE_SNOOZE", {reminder_id: "rem_4ae3...", minutes: 30});
 *
 * The bridge publishes a Needlecare mirror event on needlecare/mirror/<id>/event:
 *   {"type": "ack", "event_id": "...", "reminder_id": "...", "profile": "alice"}
 *   {"type": "snooze", "event_id": "...", "reminder_id": "...", "minutes": 30}
 * event_id is new for every press (a repeated id is ignored by Needlecare as a
 * redelivery); profile is optional; minutes defaults to 30 (1 to 1440).
 *
 * valueFormat is evaluated by the bridge with the notification payload in `value`:
 * eval(eval("`" + valueFormat + "`")); the result is sent as JSON (stringifyPayload).
 */

const MIRROR_ID = "hallway";
const BASE_TOPIC = "needlecare";
const EVENT_TOPIC = `${BASE_TOPIC}/mirror/${MIRROR_ID}/event`;

// The JavaScript text of a function that builds the event from the payload `p`.
function eventFormat(type, extra) {
  return (
    "(${JSON.stringify((function (p) {" +
    ` var e = {type: "${type}",` +
    ` event_id: "${MIRROR_ID}-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10),` +
    " reminder_id: String(p.reminder_id)};" +
    " if (p.profile) { e.profile = String(p.profile); }" +
    extra +
    " return e;" +
    " })(value))})"
  );
}

const ACK_FORMAT = eventFormat("ack", "");
const SNOOZE_FORMAT = eventFormat(
  "snooze",
  " e.minutes = Math.min(1440, Math.max(1, Math.round(Number(p.minutes) || 30)));",
);

const notiHook = [
  {
    notiId: "NEEDLECARE_ACK",
    notiPayload: [{ valueFormat: ACK_FORMAT, notiMqttCmd: ["needlecare_ack"] }],
  },
  {
    notiId: "NEEDLECARE_SNOOZE",
    notiPayload: [{ valueFormat: SNOOZE_FORMAT, notiMqttCmd: ["needlecare_snooze"] }],
  },
];

const notiMqttCommands = [
  // No mqttMsgPayload: the formatted value is sent, as JSON. QoS 1, not retained.
  { commandId: "needlecare_ack", mqttTopic: EVENT_TOPIC, qos: 1, retain: false },
  { commandId: "needlecare_snooze", mqttTopic: EVENT_TOPIC, qos: 1, retain: false },
];

module.exports = { notiHook, notiMqttCommands };
