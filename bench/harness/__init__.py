"""The one harness of every bench: command line, report, processes, MQTT, the daemon."""
