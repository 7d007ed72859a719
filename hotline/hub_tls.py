"""HTTPS for the console hub (``hub.tls``): a configured certificate, or a self-signed one made at first start.

The self-signed certificate (ECDSA P-256, 10 years) goes to ``<home>/tls/hub.crt`` and ``hub.key`` (0600), names
``localhost``, ``127.0.0.1``, ``hub.host`` and this machine's name, and is made once; its SHA-256 fingerprint is
printed at every start so staff can compare it with what the browser shows before accepting it. Hotline
processes that talk to the hub (supervisor, workers) trust exactly that certificate (``SSL_CERT_FILE``, which
httpx and Python's ssl read)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class HubCertificate:
    cert: Path
    key: Path
    fingerprint: str  # SHA-256, colon-separated hex
    generated: bool  # made now (first start)


def fingerprint(cert_path: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def _names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    for name in {host, socket.gethostname()} - {"", "0.0.0.0", "::", "localhost", "127.0.0.1"}:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return names


def generate(cert_path: Path, key_path: Path, host: str, common_name: str = "12368 hotline hub") -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "12368诉讼服务热线")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_key = key_path.with_name(key_path.name + ".tmp")
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    tmp_cert = cert_path.with_name(cert_path.name + ".tmp")
    tmp_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp_key, key_path)
    os.replace(tmp_cert, cert_path)


def ensure_certificate(home: Path, host: str, cert: Path | None = None, key: Path | None = None,
                       name: str = "hub") -> HubCertificate:
    """The configured pair (both must exist), else ``<home>/tls/{name}.{crt,key}``, made now when missing
    (``name`` "hub" for the console's HTTPS, "sip" for Kamailio's SIP over TLS)."""
    if cert is not None or key is not None:
        if cert is None or key is None or not cert.is_file() or not key.is_file():
            raise FileNotFoundError(f"{name}.tls_cert and {name}.tls_key must both name existing files ({cert}, {key})")
        return HubCertificate(cert, key, fingerprint(cert), False)
    cert, key = home / "tls" / f"{name}.crt", home / "tls" / f"{name}.key"
    made = not (cert.is_file() and key.is_file())
    if made:
        generate(cert, key, host, f"12368 hotline {name}")
    return HubCertificate(cert, key, fingerprint(cert), made)
