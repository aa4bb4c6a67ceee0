#!/usr/bin/with-contenv bashio
# shellcheck shell=bash
# Start Needlecare from the add-on's options: write /data/needlecare.yaml with
# options_to_config.py, pass the broker and Home Assistant credentials through the
# environment (NEEDLECARE_<SECTION>__<KEY>, never written to a file), check, run.
set -euo pipefail

OPTIONS=/data/options.json
CONFIG=/data/needlecare.yaml
EXTRA=/config/needlecare.yaml
CONVERTER=/usr/local/share/needlecare/options_to_config.py

# No broker in the options: use the Mosquitto broker add-on through the services API.
if ! bashio::config.has_value 'mqtt.host'; then
  if bashio::services.available mqtt; then
    NEEDLECARE_MQTT__HOST="$(bashio::services mqtt 'host')"
    NEEDLECARE_MQTT__PORT="$(bashio::services mqtt 'port')"
    NEEDLECARE_MQTT__USERNAME="$(bashio::services mqtt 'username')"
    NEEDLECARE_MQTT__PASSWORD="$(bashio::services mqtt 'password')"
    export NEEDLECARE_MQTT__HOST NEEDLECARE_MQTT__PORT NEEDLECARE_MQTT__USERNAME NEEDLECARE_MQTT__PASSWORD
    bashio::log.info "Using the MQTT broker add-on at ${NEEDLECARE_MQTT__HOST}:${NEEDLECARE_MQTT__PORT}"
  else
    bashio::log.warning "No MQTT broker: install the Mosquitto broker add-on or set mqtt.host"
  fi
fi

# No token in the options: this Home Assistant, through the Supervisor's proxy.
if ! bashio::config.has_value 'homeassistant.token'; then
  export NEEDLECARE_HOMEASSISTANT__TOKEN="${SUPERVISOR_TOKEN:-}"
fi

# The web app behind ingress: reachable in the container's network, but only the
# Supervisor (172.30.32.2) is served without NEEDLECARE_WEB__TOKEN.
export NEEDLECARE_WEB__ENABLED=true NEEDLECARE_WEB__HOST=0.0.0.0 NEEDLECARE_WEB__PORT=8470
export NEEDLECARE_WEB__INGRESS=true

if [ -f "$EXTRA" ]; then
  bashio::log.info "Adding ${EXTRA} under the options"
fi
python3 "$CONVERTER" "$OPTIONS" "$CONFIG" --extra "$EXTRA"
needlecare check-config -c "$CONFIG" || bashio::exit.nok "The configuration has problems (listed above)"

bashio::log.info "Starting Needlecare $(needlecare --version | awk '{print $NF}')"
exec needlecare run -c "$CONFIG"
