"""Daemon configuration: YAML file models, layered loading and readable errors."""

from needlecare.config.errors import HIDDEN, MISSING, ConfigError, ConfigProblem, format_problems
from needlecare.config.loading import CONFIG_PATH_VARIABLE, load_config
from needlecare.config.models import (
    DeviceConfig,
    HomeAssistantConfig,
    LoggingConfig,
    MirrorConfig,
    MqttConfig,
    NeedlecareConfig,
    ProfileConfig,
    QuietHours,
    SessionsConfig,
    StoreConfig,
    TlsConfig,
)

__all__ = [
    "CONFIG_PATH_VARIABLE",
    "HIDDEN",
    "MISSING",
    "ConfigError",
    "ConfigProblem",
    "DeviceConfig",
    "HomeAssistantConfig",
    "LoggingConfig",
    "MirrorConfig",
    "MqttConfig",
    "NeedlecareConfig",
    "ProfileConfig",
    "QuietHours",
    "SessionsConfig",
    "StoreConfig",
    "TlsConfig",
    "format_problems",
    "load_config",
]
