"""Certificates for the embedded broker's TLS listener, generated on the spot.

A throwaway CA signs a server certificate for 127.0.0.1/localhost (and, optionally, client
certificates). Nothing is committed: tests and ``kafka start --tls`` make fresh ones in the
broker's data dir. Built with ``cryptography``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class TlsFiles:
    ca_cert: Path         # give clients this as KAFKA_SSL_CA_LOCATION
    server_pem: Path      # private key (PKCS#8) + certificate chain, for the broker's PEM keystore


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _cert(subject: str, key, issuer_name: x509.Name, issuer_key, *, ca: bool, sans: list | None = None,
          usage=None) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_ca(folder: Path, name: str = "dataplatform test CA") -> tuple[Path, x509.Certificate, object]:
    folder.mkdir(parents=True, exist_ok=True)
    key = _key()
    cert = _cert(name, key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), key, ca=True)
    path = folder / f"{name.replace(' ', '-')}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert, key


CA_NAME = "dataplatform test CA"


def broker_tls_files(folder: Path) -> TlsFiles:
    """Where :func:`make_broker_tls` writes its files in ``folder``."""
    return TlsFiles(ca_cert=folder / f"{CA_NAME.replace(' ', '-')}.crt", server_pem=folder / "server.pem")


def make_broker_tls(folder: Path) -> TlsFiles:
    """A CA and a server certificate for the loopback broker, written into ``folder``."""
    ca_path, ca_cert, ca_key = make_ca(folder, CA_NAME)
    key = _key()
    cert = _cert("localhost", key, ca_cert.subject, ca_key, ca=False,
                 sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                 usage=[ExtendedKeyUsageOID.SERVER_AUTH])
    server_pem = broker_tls_files(folder).server_pem
    server_pem.write_bytes(_pem_key(key) + cert.public_bytes(serialization.Encoding.PEM)
                           + ca_cert.public_bytes(serialization.Encoding.PEM))
    server_pem.chmod(0o600)
    return TlsFiles(ca_cert=ca_path, server_pem=server_pem)
