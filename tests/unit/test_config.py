"""Configuration: models, layered loading (defaults < file < environment) and errors."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

from datetime import time, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from needlecare.config import (
    HIDDEN,
    MISSING,
    ConfigError,
    ConfigProblem,
    NeedlecareConfig,
    format_problems,
    load_config,
)

EXAMPLE = Path(__file__).parents[2] / "config" / "needlecare.example.yaml"
ALICE = "profiles:\n  alice: {timezone: Europe/Berlin}\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "needlecare.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def quiet_hours(start: str, end: str) -> str:
    """YAML for profile alice with the given quiet hours, written as YAML scalars."""
    return (
        f"profiles:\n  alice:\n    timezone: UTC\n    quiet_hours: {{start: {start}, end: {end}}}\n"
    )


def problems(path: Path | None, environ: dict[str, str] | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    return caught.value.problems


class TestExampleFile:
    def test_loads_without_problems(self) -> None:
        """The shipped example is valid as it stands."""
        config = load_config(EXAMPLE, {})
        assert "Europe/Berlin" == config.profiles["alice"].timezone
        assert (time(22, 0), time(7, 0)) == (
            config.profiles["alice"].quiet_hours.start,
            config.profiles["alice"].quiet_hours.end,
        )
        assert ("alice", 1.5) == (
            config.devices["pen1"].owner,
            config.devices["pen1"].max_needle_depth_mm,
        )
        assert ["alice"] == config.mirrors["hallway"].profiles
        assert timedelta(hours=2) == config.sessions.timeout
        assert config.homeassistant is None

    def test_token_from_environment_enables_home_assistant(self) -> None:
        """The example's commented-out section works with the token from the environment."""
        config = load_config(
            EXAMPLE,
            {
                "NEEDLECARE_HOMEASSISTANT__URL": "http://homeassistant.local:8123",
                "NEEDLECARE_HOMEASSISTANT__TOKEN": "abc",
            },
        )
        assert config.homeassistant is not None
        assert SecretStr("abc") == config.homeassistant.token


class TestDefaults:
    def test_empty_file_gives_defaults(self, tmp_path: Path) -> None:
        """An empty file is valid and equals the built-in defaults."""
        config = load_config(write(tmp_path, "# nothing yet\n"), {})
        assert NeedlecareConfig() == config
        assert ("127.0.0.1", 1883, "needlecare") == (
            config.mqtt.host,
            config.mqtt.port,
            config.mqtt.base_topic,
        )
        assert Path("needlecare.db") == config.store.path

    def test_no_file_gives_defaults(self) -> None:
        """Without a path or NEEDLECARE_CONFIG no file is read at all."""
        assert NeedlecareConfig() == load_config(None, {})

    def test_model_does_not_read_process_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Only load_config layers the environment; building the model reads no variables."""
        monkeypatch.setenv("NEEDLECARE_MQTT__PORT", "1884")
        assert 1883 == NeedlecareConfig().mqtt.port

    def test_environ_defaults_to_process_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without an explicit mapping, load_config reads os.environ."""
        monkeypatch.delenv("NEEDLECARE_CONFIG", raising=False)
        monkeypatch.setenv("NEEDLECARE_MQTT__PORT", "1884")
        assert 1884 == load_config(None).mqtt.port


class TestConfigPath:
    def test_path_from_environment(self, tmp_path: Path) -> None:
        """NEEDLECARE_CONFIG names the file when no path is given."""
        path = write(tmp_path, "mqtt: {port: 1999}\n")
        assert 1999 == load_config(None, {"NEEDLECARE_CONFIG": str(path)}).mqtt.port

    def test_given_path_beats_environment(self, tmp_path: Path) -> None:
        """An explicit path (the -c option) wins over NEEDLECARE_CONFIG."""
        path = write(tmp_path, "mqtt: {port: 1999}\n")
        environ = {"NEEDLECARE_CONFIG": str(tmp_path / "elsewhere.yaml")}
        assert 1999 == load_config(path, environ).mqtt.port

    def test_config_variable_is_not_a_field(self, tmp_path: Path) -> None:
        """NEEDLECARE_CONFIG is not mistaken for a top-level key."""
        path = write(tmp_path, "")
        assert NeedlecareConfig() == load_config(None, {"NEEDLECARE_CONFIG": str(path)})


class TestEnvironmentOverrides:
    def test_nested_key_beats_file_and_keeps_siblings(self, tmp_path: Path) -> None:
        """One variable replaces one key; the rest of the section stays from the file."""
        path = write(tmp_path, "mqtt:\n  host: broker.lan\n  port: 1883\n  keepalive_s: 30\n")
        mqtt = load_config(path, {"NEEDLECARE_MQTT__PORT": "1884"}).mqtt
        assert ("broker.lan", 1884, 30) == (mqtt.host, mqtt.port, mqtt.keepalive_s)

    def test_profile_key(self, tmp_path: Path) -> None:
        """A variable can reach into a keyed section and override one profile field."""
        path = write(
            tmp_path, "profiles:\n  alice:\n    timezone: Europe/Berlin\n    display_name: A\n"
        )
        environ = {"NEEDLECARE_PROFILES__ALICE__TIMEZONE": "America/New_York"}
        alice = load_config(path, environ).profiles["alice"]
        assert ("America/New_York", "A") == (alice.timezone, alice.display_name)

    def test_profile_from_environment_only(self) -> None:
        """A whole profile can be added without any file."""
        config = load_config(None, {"NEEDLECARE_PROFILES__BOB__TIMEZONE": "UTC"})
        assert ["bob"] == list(config.profiles)

    def test_names_are_case_insensitive(self) -> None:
        """Variable names match whatever their case."""
        assert (
            "WARNING" == load_config(None, {"needlecare_logging__LEVEL": "warning"}).logging.level
        )

    def test_json_for_a_list(self, tmp_path: Path) -> None:
        """A list-valued key takes JSON."""
        path = write(tmp_path, ALICE)
        environ = {"NEEDLECARE_MIRRORS__HALLWAY__PROFILES": '["alice"]'}
        assert ["alice"] == load_config(path, environ).mirrors["hallway"].profiles

    def test_text_where_json_is_needed(self) -> None:
        """A list-valued key given plain text is reported against its variable."""
        expected = [
            ConfigProblem(
                path="mirrors.hallway.profiles",
                value="alice",
                message="expected JSON: this key holds a section, a list or a mapping",
                source="environment NEEDLECARE_MIRRORS__HALLWAY__PROFILES",
            )
        ]
        assert expected == problems(None, {"NEEDLECARE_MIRRORS__HALLWAY__PROFILES": "alice"})


class TestValidation:
    def test_unknown_key(self, tmp_path: Path) -> None:
        """Unknown keys are errors at their dotted path, at any depth."""
        path = write(tmp_path, "colour: blue\nmqtt: {hots: x}\n")
        source = f"file {path}"
        expected = [
            ConfigProblem(
                "mqtt.hots",
                HIDDEN,
                "unknown key; did you mean 'host'? (its value is not shown)",
                source,
            ),
            ConfigProblem("colour", HIDDEN, "unknown key (its value is not shown)", source),
        ]
        assert expected == problems(path)

    @pytest.mark.parametrize(
        ("port", "message"),
        [
            ("abc", "not a whole number"),
            (0, "must be at least 1"),
            (65536, "must be at most 65535"),
        ],
    )
    def test_bad_port(self, tmp_path: Path, port: object, message: str) -> None:
        """The port must be an integer in 1..65535."""
        path = write(tmp_path, f"mqtt: {{port: {port}}}\n")
        assert [ConfigProblem("mqtt.port", port, message, f"file {path}")] == problems(path)

    def test_bad_time_zone(self, tmp_path: Path) -> None:
        """A time zone unknown to the tz database is rejected in plain words."""
        path = write(tmp_path, "profiles:\n  alice: {timezone: Mars/Olympus}\n")
        expected = [
            ConfigProblem(
                "profiles.alice.timezone", "Mars/Olympus", "unknown time zone", f"file {path}"
            )
        ]
        assert expected == problems(path)

    def test_missing_time_zone(self, tmp_path: Path) -> None:
        """A required key that is absent shows as <missing>."""
        path = write(tmp_path, "profiles:\n  alice: {display_name: Alice}\n")
        expected = [
            ConfigProblem(
                "profiles.alice.timezone", MISSING, "required, but not given", f"file {path}"
            )
        ]
        assert expected == problems(path)

    def test_device_owner_must_be_a_profile(self, tmp_path: Path) -> None:
        """A device owned by an unconfigured profile is located at its owner key."""
        path = write(tmp_path, ALICE + "devices:\n  pen1: {owner: bob}\n")
        expected = [
            ConfigProblem("devices.pen1.owner", "bob", "unknown profile 'bob'", f"file {path}")
        ]
        assert expected == problems(path)

    def test_mirror_profiles_must_be_configured(self, tmp_path: Path) -> None:
        """Each profile a mirror serves must exist; the error names the list item."""
        path = write(tmp_path, ALICE + "mirrors:\n  hallway: {profiles: [alice, eve]}\n")
        expected = [
            ConfigProblem(
                "mirrors.hallway.profiles.1", "eve", "unknown profile 'eve'", f"file {path}"
            )
        ]
        assert expected == problems(path)

    def test_keys_must_be_slugs(self, tmp_path: Path) -> None:
        """Profile, device and mirror ids end up in topics, so they must be slugs."""
        path = write(tmp_path, "profiles:\n  Alice Smith: {timezone: UTC}\n")
        expected = [
            ConfigProblem(
                "profiles.Alice Smith",
                "Alice Smith",
                "not a valid id: use 1 to 64 of a-z, 0-9, '_' and '-'",
                f"file {path}",
            )
        ]
        assert expected == problems(path)

    @pytest.mark.parametrize(
        ("topic", "message"),
        [
            ("", "must not be empty"),
            ("home/+", "must not contain '+', '#' or NUL"),
            ("home/#", "must not contain '+', '#' or NUL"),
            ("/home", "must not start or end with '/'"),
            ("home/", "must not start or end with '/'"),
        ],
    )
    def test_topic_roots(self, topic: str, message: str) -> None:
        """base_topic and discovery_prefix must be usable as literal topic prefixes."""
        environ = {"NEEDLECARE_MQTT__BASE_TOPIC": topic, "NEEDLECARE_MQTT__DISCOVERY_PREFIX": topic}
        expected = [
            ConfigProblem(
                "mqtt.base_topic", topic, message, "environment NEEDLECARE_MQTT__BASE_TOPIC"
            ),
            ConfigProblem(
                "mqtt.discovery_prefix",
                topic,
                message,
                "environment NEEDLECARE_MQTT__DISCOVERY_PREFIX",
            ),
        ]
        assert expected == problems(None, environ)

    def test_client_id(self) -> None:
        """client_id is restricted to a safe character set."""
        [problem] = problems(None, {"NEEDLECARE_MQTT__CLIENT_ID": "needle care"})
        assert ("mqtt.client_id", "needle care") == (problem.path, problem.value)

    def test_password_needs_username(self, tmp_path: Path) -> None:
        """A password alone is an error on the password key."""
        path = write(tmp_path, "mqtt: {password: hunter2}\n")
        expected = [
            ConfigProblem(
                "mqtt.password", "**********", "a password needs a username", f"file {path}"
            )
        ]
        assert expected == problems(path)

    def test_tls_client_pair(self, tmp_path: Path) -> None:
        """A client certificate is useless without its key."""
        path = write(tmp_path, "mqtt:\n  tls: {cert_file: client.pem}\n")
        expected = [
            ConfigProblem(
                "mqtt.tls",
                {"cert_file": "client.pem"},
                "cert_file and key_file must be given together",
                f"file {path}",
            )
        ]
        assert expected == problems(path)

    def test_home_assistant_url(self, tmp_path: Path) -> None:
        """The Home Assistant URL must be http or https."""
        path = write(tmp_path, "homeassistant: {url: 'ftp://ha.lan'}\n")
        expected = [
            ConfigProblem(
                "homeassistant.url",
                "ftp://ha.lan",
                "must be an http:// or https:// URL",
                f"file {path}",
            )
        ]
        assert expected == problems(path)

    def test_quiet_hours_must_differ(self, tmp_path: Path) -> None:
        """An empty quiet window is refused rather than read as 'always' or 'never'."""
        [problem] = problems(write(tmp_path, quiet_hours("'07:00'", "'07:00'")))
        expected = ("profiles.alice.quiet_hours", "quiet hours need a start and an end that differ")
        assert expected == (problem.path, problem.message)

    def test_quiet_hours_across_midnight(self, tmp_path: Path) -> None:
        """A window crossing midnight is the normal case."""
        path = write(tmp_path, quiet_hours("'23:30'", "'06:15'"))
        quiet = load_config(path, {}).profiles["alice"].quiet_hours
        assert (time(23, 30), time(6, 15)) == (quiet.start, quiet.end)

    def test_unquoted_time(self, tmp_path: Path) -> None:
        """YAML reads an unquoted 22:00 as 1320; that is refused, not taken as 00:22."""
        [problem] = problems(write(tmp_path, quiet_hours("22:00", "'07:00'")))
        expected = (
            "profiles.alice.quiet_hours.start",
            1320,
            'write the time in quotes, like "22:00"',
        )
        assert expected == (problem.path, problem.value, problem.message)

    @pytest.mark.parametrize("timeout", ["7200", "PT2H", "02:00:00"])
    def test_timeout_formats(self, timeout: str) -> None:
        """The session timeout takes seconds, ISO-8601 or HH:MM:SS."""
        config = load_config(None, {"NEEDLECARE_SESSIONS__TIMEOUT": timeout})
        assert timedelta(hours=2) == config.sessions.timeout

    def test_timeout_must_be_positive(self) -> None:
        """A zero timeout would close every session at once."""
        [problem] = problems(None, {"NEEDLECARE_SESSIONS__TIMEOUT": "0"})
        assert ("sessions.timeout", "must be more than 0 seconds") == (
            problem.path,
            problem.message,
        )


class TestSecrets:
    def test_secrets_are_secret_str(self) -> None:
        """Password and token are SecretStr, and secret_values lists their plain text."""
        config = load_config(
            None,
            {
                "NEEDLECARE_MQTT__USERNAME": "needlecare",
                "NEEDLECARE_MQTT__PASSWORD": "hunter2",
                "NEEDLECARE_HOMEASSISTANT__URL": "https://ha.lan",
                "NEEDLECARE_HOMEASSISTANT__TOKEN": "tok-123",
            },
        )
        assert config.homeassistant is not None
        assert (SecretStr, SecretStr) == (
            type(config.mqtt.password),
            type(config.homeassistant.token),
        )
        assert ["hunter2", "tok-123"] == config.secret_values()
        for text in (repr(config), str(config)):
            assert ("hunter2" in text, "tok-123" in text) == (False, False)

    def test_no_secrets_means_no_secret_values(self) -> None:
        """secret_values is empty when nothing is set."""
        assert [] == NeedlecareConfig().secret_values()

    @pytest.mark.parametrize(
        ("text", "environ"),
        [
            ("mqtt: {password: hunter2}\n", {}),
            ("mqtt: {username: u, password: hunter2, host: hunter2, port: x}\n", {}),
            ("homeassistant: {url: x, token: hunter2}\n", {}),
            ("", {"NEEDLECARE_HOMEASSISTANT": '{"token": "hunter2", "url": 5'}),
            ("", {"NEEDLECARE_MQTT": '{"password": "hunter2", "port": "x"}'}),
        ],
    )
    def test_never_in_problems(self, tmp_path: Path, text: str, environ: dict[str, str]) -> None:
        """Problems mask a secret wherever it appears: its own key, a section, other keys."""
        with pytest.raises(ConfigError) as caught:
            load_config(write(tmp_path, text), environ)
        assert (False, False) == (
            "hunter2" in format_problems(caught.value),
            "hunter2" in repr(caught.value.problems),
        )

    def test_not_in_traceback(self, tmp_path: Path) -> None:
        """pydantic's error, which prints raw inputs, is not chained onto ConfigError."""
        with pytest.raises(ConfigError) as caught:
            load_config(write(tmp_path, "mqtt: {password: hunter2}\n"), {})
        assert caught.value.__suppress_context__


class TestFileErrors:
    def test_yaml_syntax_error(self, tmp_path: Path) -> None:
        """A YAML syntax error names its line and column."""
        path = write(tmp_path, "mqtt:\n  host: [broker\n")
        expected = [
            ConfigProblem(
                "<file>",
                str(path),
                "invalid YAML at line 3, column 1: expected ',' or ']', but got '<stream end>'",
                f"file {path}",
            )
        ]
        assert expected == problems(path)

    def test_top_level_not_a_mapping(self, tmp_path: Path) -> None:
        """The top level must map section names to sections."""
        path = write(tmp_path, "- mqtt\n- store\n")
        expected = [
            ConfigProblem(
                "<file>",
                str(path),
                "the top level must be a mapping of sections, not list",
                f"file {path}",
            )
        ]
        assert expected == problems(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A path that does not exist is an error, not a silent fall-back to defaults."""
        path = tmp_path / "nope.yaml"
        expected = [ConfigProblem("<file>", str(path), "file not found", f"file {path}")]
        assert expected == problems(path)

    def test_missing_file_from_environment(self, tmp_path: Path) -> None:
        """NEEDLECARE_CONFIG pointing nowhere is reported the same way."""
        path = tmp_path / "nope.yaml"
        [problem] = problems(None, {"NEEDLECARE_CONFIG": str(path)})
        assert ("<file>", "file not found") == (problem.path, problem.message)


class TestFormatProblems:
    def test_several_problems_word_for_word(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each problem shows its path, value, source and message, in a fixed layout."""
        monkeypatch.chdir(tmp_path)
        path = Path("config/needlecare.yaml")
        path.parent.mkdir()
        path.write_text(
            "mqtt:\n  port: abc\n  colour: blue\n"
            "profiles:\n  alice: {timezone: Europe/Berlin}\n  bob: {display_name: Bob}\n",
            encoding="utf-8",
        )
        environ = {
            "NEEDLECARE_PROFILES__ALICE__TIMEZONE": "Mars/Olympus",
            "NEEDLECARE_MQTT__USERNAME": "needlecare",
            "NEEDLECARE_MQTT__PASSWORD": "hunter2",
        }
        expected = (
            "config/needlecare.yaml: 4 problems\n"
            "  mqtt.port: 'abc' (file config/needlecare.yaml)\n"
            "    not a whole number\n"
            "  mqtt.colour (file config/needlecare.yaml)\n"
            "    unknown key (its value is not shown)\n"
            "  profiles.alice.timezone: 'Mars/Olympus'"
            " (environment NEEDLECARE_PROFILES__ALICE__TIMEZONE)\n"
            "    unknown time zone\n"
            "  profiles.bob.timezone: <missing> (file config/needlecare.yaml)\n"
            "    required, but not given"
        )
        with pytest.raises(ConfigError) as caught:
            load_config(path, environ)
        assert expected == format_problems(caught.value)

    def test_one_problem_without_file(self) -> None:
        """The header is singular for one problem and says 'configuration' without a file."""
        with pytest.raises(ConfigError) as caught:
            load_config(None, {"NEEDLECARE_MQTT__PORT": "0"})
        expected = (
            "configuration: 1 problem\n"
            "  mqtt.port: '0' (environment NEEDLECARE_MQTT__PORT)\n"
            "    must be at least 1"
        )
        assert expected == format_problems(caught.value)

    def test_error_text_is_the_header(self) -> None:
        """str(ConfigError) is the one-line summary."""
        error = ConfigError([ConfigProblem("mqtt.port", 0, "bad", "default")])
        assert "configuration: 1 problem" == str(error)
