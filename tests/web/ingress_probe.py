"""Run inside a fresh network namespace where 172.30.32.2 is a local address.

``test_ingress.py`` starts it with ``unshare -rn``: there the Supervisor's
address can be bound as a TCP source, so the daemon sees a real peer
172.30.32.2. Prints one JSON object with what each kind of client got.
"""

import http.client
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.daemon import DaemonProcess, wait_until
from support.mosquitto import free_port, running_broker

SUPERVISOR = "172.30.32.2"
TOKEN = "ingress-test-token"
INGRESS_PATH = "/api/hassio_ingress/Xy12-ab"


def ask(
    port: int, path: str, *, source: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    host = SUPERVISOR if source == SUPERVISOR else "127.0.0.1"
    connection = http.client.HTTPConnection(host, port, timeout=10, source_address=(source, 0))
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        body = response.read().decode()
    finally:
        connection.close()
    base = re.search(r'<base href="([^"]*)">', body)
    return {"status": response.status, "base": base.group(1) if base else None}


def start(workdir: Path, broker: Any, web: dict[str, Any]) -> tuple[DaemonProcess, int]:
    port = free_port()
    workdir.mkdir()
    extra = {"web": {"enabled": True, "host": "0.0.0.0", "port": port, "ingress": True, **web}}
    daemon = DaemonProcess(workdir, broker, extra).start()
    wait_until(lambda: daemon.log_count("web_started") > 0, what="the web server")
    return daemon, port


def probe(workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for broker in running_broker(workdir / "broker", port=free_port()):
        daemon, port = start(workdir / "with-token", broker, {"token": TOKEN})
        forged = {
            "X-Forwarded-For": SUPERVISOR,
            "Forwarded": f"for={SUPERVISOR}",
            "X-Real-IP": SUPERVISOR,
            "X-Ingress-Path": INGRESS_PATH,
        }
        results["supervisor_api"] = ask(port, "/api/v1/profiles", source=SUPERVISOR)
        results["supervisor_page"] = ask(
            port, "/", source=SUPERVISOR, headers={"X-Ingress-Path": INGRESS_PATH}
        )
        results["supervisor_bad_prefix"] = ask(
            port, "/", source=SUPERVISOR, headers={"X-Ingress-Path": '/x"><script>'}
        )
        results["local_forged"] = ask(port, "/api/v1/profiles", source="127.0.0.1", headers=forged)
        bearer = {"Authorization": f"Bearer {TOKEN}", "X-Ingress-Path": INGRESS_PATH}
        results["local_token_page"] = ask(port, "/", source="127.0.0.1", headers=bearer)
        daemon.stop()
        daemon, port = start(workdir / "without-token", broker, {})
        results["no_token_supervisor"] = ask(port, "/api/v1/profiles", source=SUPERVISOR)
        results["no_token_local"] = ask(port, "/api/v1/profiles", source="127.0.0.1")
        results["no_token_local_forged"] = ask(
            port, "/api/v1/profiles", source="127.0.0.1", headers=forged
        )
        results["no_token_health"] = ask(port, "/api/v1/health", source="127.0.0.1")
        daemon.stop()
    return results


if __name__ == "__main__":
    print(json.dumps(probe(Path(sys.argv[1]))))
