"""Warnings about a configuration that is valid but probably not what was meant."""

from needlecare.config import NeedlecareConfig


def config_warnings(config: NeedlecareConfig) -> list[str]:
    """Plain sentences, one per finding; empty when nothing looks off."""
    found = []
    if not config.profiles:
        found.append("profiles: none configured, so no session can be recorded")
    if config.profiles and not config.devices:
        found.append("devices: none configured, so any device id is accepted")
    owners = {device.owner for device in config.devices.values()}
    for profile in config.profiles:
        if config.devices and profile not in owners:
            found.append(f"profiles.{profile}: owns no device; sessions only by log-session")
    ha = config.homeassistant
    if ha is None:
        found.append("homeassistant: not set, so the dashboard, mobile and voice channels are off")
    else:
        if ha.token is None:
            found.append("homeassistant.token: not set; set NEEDLECARE_HOMEASSISTANT__TOKEN")
        for name, profile_cfg in config.profiles.items():
            if profile_cfg.notify_service is None:
                found.append(f"profiles.{name}.notify_service: not set, no phone notifications")
    if config.web.token is None and not config.web.ingress:
        found.append("web.token: not set; anyone on this machine can use the web app")
    return found
