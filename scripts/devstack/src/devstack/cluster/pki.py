"""The harness's certificates and kubeconfigs, generated once per cluster root.

A cluster CA signs the API server's serving certificate and one client certificate per
component; the Kubernetes identity is the certificate's CN (user) and O (groups), exactly as
kubeadm does it. A separate front-proxy CA serves the aggregation layer
(`--requestheader-*`, `--proxy-client-*`), and an RSA key pair signs service-account tokens.
Everything is written under `<root>/pki/` readable only by the owner.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)
API_SERVER_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
API_SERVER_IPS = ("127.0.0.1", "10.96.0.1")  # loopback and the first service IP

# Client identities: file stem -> (user, groups). system:masters bypasses RBAC: only the
# administrator and kwok (which acts for every simulated node) get it; the controller-manager
# and the scheduler run with their own least-privilege identities, as in a real cluster.
CLIENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("kubernetes-admin", ("system:masters",)),
    "controller-manager": ("system:kube-controller-manager", ()),
    "scheduler": ("system:kube-scheduler", ()),
    "kwok": ("kwok-controller", ("system:masters",)),
}
SERVING_COMPONENTS = ("kube-controller-manager", "kube-scheduler")


@dataclass(frozen=True)
class Pki:
    """Paths of everything the control plane reads."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def apiserver_cert(self) -> Path:
        return self.folder / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.folder / "apiserver.key"

    @property
    def front_proxy_ca_cert(self) -> Path:
        return self.folder / "front-proxy-ca.crt"

    @property
    def front_proxy_client_cert(self) -> Path:
        return self.folder / "front-proxy-client.crt"

    @property
    def front_proxy_client_key(self) -> Path:
        return self.folder / "front-proxy-client.key"

    @property
    def service_account_key(self) -> Path:
        return self.folder / "sa.key"

    @property
    def service_account_pub(self) -> Path:
        return self.folder / "sa.pub"

    def serving_cert(self, component: str) -> Path:
        return self.folder / f"{component}-serving.crt"

    def serving_key(self, component: str) -> Path:
        return self.folder / f"{component}-serving.key"

    def client_cert(self, client: str) -> Path:
        return self.folder / f"{client}.crt"

    def client_key(self, client: str) -> Path:
        return self.folder / f"{client}.key"

    def kubeconfig(self, client: str) -> Path:
        return self.folder / f"{client}.kubeconfig"

    def exists(self) -> bool:
        return all(self.kubeconfig(c).is_file() for c in CLIENTS) and self.ca_cert.is_file()


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, groups: tuple[str, ...] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    return x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _self_signed_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    *,
    server: bool,
    dns_names: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if dns_names or ips:
        alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def kubeconfig_document(
    server: str, ca_cert: Path, client_cert: Path, client_key: Path, user: str
) -> dict[str, object]:
    """A one-context kubeconfig (named `ml-platform-harness`) with file references."""
    context = "ml-platform-harness"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": context, "cluster": {"server": server, "certificate-authority": str(ca_cert)}}
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(client_cert),
                    "client-key": str(client_key),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
        "current-context": context,
    }


def write_kubeconfigs(pki: Pki, server: str) -> None:
    """(Re)write every component's kubeconfig for the API server at `server`."""
    for client, (user, _groups) in CLIENTS.items():
        document = kubeconfig_document(
            server, pki.ca_cert, pki.client_cert(client), pki.client_key(client), user
        )
        _write(pki.kubeconfig(client), yaml.safe_dump(document, sort_keys=False).encode())


def create_pki(folder: Path, server: str) -> Pki:
    """Generate the CAs, certificates, service-account keys and kubeconfigs under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    pki = Pki(folder)
    ca, ca_key = _self_signed_ca("ml-platform-harness-ca")
    _write(pki.ca_cert, _cert_pem(ca))
    _write(pki.ca_key, _key_pem(ca_key))

    cert, key = _issue(
        ca,
        ca_key,
        _name("kube-apiserver"),
        server=True,
        dns_names=API_SERVER_NAMES,
        ips=API_SERVER_IPS,
    )
    _write(pki.apiserver_cert, _cert_pem(cert))
    _write(pki.apiserver_key, _key_pem(key))

    for client, (user, groups) in CLIENTS.items():
        cert, key = _issue(ca, ca_key, _name(user, groups), server=False)
        _write(pki.client_cert(client), _cert_pem(cert))
        _write(pki.client_key(client), _key_pem(key))

    # The controller-manager and the scheduler serve /healthz: with certificates of this CA
    # their health is checked with verification, like the API server's.
    for component in SERVING_COMPONENTS:
        cert, key = _issue(
            ca, ca_key, _name(component), server=True, dns_names=("localhost",), ips=("127.0.0.1",)
        )
        _write(pki.serving_cert(component), _cert_pem(cert))
        _write(pki.serving_key(component), _key_pem(key))

    proxy_ca, proxy_ca_key = _self_signed_ca("ml-platform-harness-front-proxy-ca")
    _write(pki.front_proxy_ca_cert, _cert_pem(proxy_ca))
    cert, key = _issue(proxy_ca, proxy_ca_key, _name("front-proxy-client"), server=False)
    _write(pki.front_proxy_client_cert, _cert_pem(cert))
    _write(pki.front_proxy_client_key, _key_pem(key))

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(pki.service_account_key, _key_pem(sa_key))
    _write(
        pki.service_account_pub,
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    write_kubeconfigs(pki, server)
    return pki
