"""Take the README's screenshots of the web app: light, dark and a 375 px phone.

    .venv/bin/python tests/web/screenshots.py [docs/screenshots]

Starts a Mosquitto and the daemon with two profiles, logs a session for each,
adds a few skin checks, and photographs the overview with Debian's chromium.
"""

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from browser import launch, watched_page  # noqa: E402

from conftest import TOKEN, WebDaemon, start_web_daemon, stop  # noqa: E402
from needlecare.config import MqttConfig  # noqa: E402
from needlecare_integrations.mqtt.oneshot import publish_all  # noqa: E402
from support.mosquitto import free_port, running_broker  # noqa: E402

SHOTS = {
    "web-light.png": {"viewport": {"width": 1100, "height": 720}, "color_scheme": "light"},
    "web-dark.png": {"viewport": {"width": 1100, "height": 720}, "color_scheme": "dark"},
    "web-mobile.png": {"viewport": {"width": 375, "height": 812}, "color_scheme": "light"},
}


def demo_data(web: WebDaemon) -> None:
    web.log_session("alice", setting="home", needle_depth_mm=0.5)
    web.log_session("bob", setting="professional", needle_depth_mm=1.0)
    web.wait_for_prompt("alice")
    mqtt = web.daemon.config["mqtt"]
    checks = [
        (
            "needlecare/mirror/hallway/event",
            json.dumps(
                {"type": "skin_check", "event_id": f"demo-{i}", "profile": "alice", "redness": r}
            ).encode(),
        )
        for i, r in enumerate((62, 48, 35, 22))
    ]
    publish_all(MqttConfig(host=mqtt["host"], port=mqtt["port"]), checks)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for broker in running_broker(Path(scratch) / "broker", port=free_port()):
            web = start_web_daemon(Path(scratch) / "web", broker)
            try:
                demo_data(web)
                for browser in launch():
                    for name, options in SHOTS.items():
                        shot = watched_page(
                            browser,
                            extra_http_headers={"Authorization": f"Bearer {TOKEN}"},
                            **options,
                        )
                        shot.page.goto(web.url + "/")
                        shot.page.wait_for_selector("[data-profile]")
                        shot.page.screenshot(
                            path=str(out / name), full_page=name.endswith("mobile.png")
                        )
                        shot.page.context.close()
                        print(f"wrote {out / name}")
            finally:
                stop(web)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/screenshots"))
