"""A throwaway certificate authority with server and client certificates, via openssl."""

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

VALID_DAYS = 3

# Extensions for each certificate. Key identifiers keep strict X.509 checking
# (Python 3.13's default) happy.
_EXTENSIONS = """\
[req]
distinguished_name = req_dn
[req_dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True, slots=True)
class Certs:
    """PEM files: the CA, a server certificate for localhost/127.0.0.1, a client one."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_certs(directory: Path) -> Certs:
    """Create a CA and two certificates it signs (RSA 2048, SHA-256) in directory."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl not found on PATH: apt-get install openssl", pytrace=False)
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "openssl.cnf"
    config.write_text(_EXTENSIONS, encoding="utf-8")
    ca_cert, ca_key = directory / "ca.crt", directory / "ca.key"
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", ca_key)
    _openssl(
        "req", "-new", "-x509", "-key", ca_key, "-out", ca_cert, "-sha256",
        "-days", VALID_DAYS, "-subj", "/CN=Needlecare Test CA",
        "-config", config, "-extensions", "ca",
    )  # fmt: skip
    ca = {"config": config, "ca_cert": ca_cert, "ca_key": ca_key}
    server = _signed(directory, "server", subject="/CN=localhost", **ca)
    client = _signed(directory, "client", subject="/CN=needlecare-test-client", **ca)
    return Certs(ca_cert, ca_key, *server, *client)


def _signed(
    directory: Path, name: str, *, subject: str, config: Path, ca_cert: Path, ca_key: Path
) -> tuple[Path, Path]:
    """Key and certificate ``name`` signed by the CA, with extensions section ``name``."""
    cert, key, request = (directory / f"{name}.{ext}" for ext in ("crt", "key", "csr"))
    _openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request,
        "-subj", subject, "-config", config,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", request, "-out", cert, "-CA", ca_cert, "-CAkey", ca_key,
        "-set_serial", f"0x{secrets.token_hex(16)}", "-sha256", "-days", VALID_DAYS,
        "-extfile", config, "-extensions", name,
    )  # fmt: skip
    return cert, key


def _openssl(*args: str | int | Path) -> None:
    command = ["openssl", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{result.stderr}", pytrace=False)


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """One CA with server and client certificates for the whole test session."""
    return make_certs(tmp_path_factory.mktemp("certs"))
