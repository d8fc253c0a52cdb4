"""First-start preparation of the embedded default configuration (conf/).

The embedded conf names its files relative to the checkout (`var/...`);
maa-server changes into the checkout before reading it, so a development run
works from any directory. Here we create what those paths point at when it
is missing: the var/ tree, a self-signed certificate (made with
`cryptography`, only ever for the embedded default: a production config that
names a missing certificate is an error) and a demo user with a random
password in a passwd-file (BLF-CRYPT hash made with bcrypt).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
import secrets
from dataclasses import dataclass
from pathlib import Path

import bcrypt

DEMO_USER = "demo"
VAR_DIRS = ("run", "mail", "log", "ssl")
CERT_FILE = "var/ssl/maa-server.pem"
KEY_FILE = "var/ssl/maa-server.key"
PASSWD_FILE = "var/passwd"
DEMO_PASSWORD_FILE = "var/demo-password"


@dataclass(frozen=True)
class DemoLogin:
    user: str
    password: str


def checkout_root(config_path: str) -> Path:
    """conf/maa.conf -> the checkout that holds it."""
    return Path(config_path).resolve().parent.parent


def prepare(root: Path) -> DemoLogin:
    """Create var/, the certificate and the demo user if they are missing."""
    var = root / "var"
    for name in VAR_DIRS:
        (var / name).mkdir(parents=True, exist_ok=True)
    os.chmod(var / "ssl", 0o700)
    if not (root / CERT_FILE).exists() or not (root / KEY_FILE).exists():
        write_self_signed(root / CERT_FILE, root / KEY_FILE)
    return ensure_demo_user(root)


def write_self_signed(cert_path: Path, key_path: Path, hostname: str = "localhost") -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "maa-server development")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def demo_ids(root: Path) -> tuple[int, int]:
    """The demo user's uid/gid: the running user's; as root (whose uid
    Dovecot refuses for mail: first_valid_uid) the checkout owner's, or
    nobody's when root owns the checkout too."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    st = root.stat()
    if st.st_uid != 0:
        return st.st_uid, st.st_gid
    try:
        nobody = pwd.getpwnam("nobody")
        return nobody.pw_uid, nobody.pw_gid
    except KeyError:
        return 65534, 65534


def ensure_demo_user(root: Path) -> DemoLogin:
    """passwd-file line `demo:{BLF-CRYPT}...:uid:gid::<home>::` (see
    demo_ids) with an absolute home under var/mail."""
    password_file = root / DEMO_PASSWORD_FILE
    passwd = root / PASSWD_FILE
    if password_file.exists() and passwd.exists():
        return DemoLogin(DEMO_USER, password_file.read_text(encoding="utf-8").strip())
    password = secrets.token_urlsafe(9)
    # $2y$ as `doveadm pw -s BLF-CRYPT` writes it (same algorithm as $2b$).
    hashed = "$2y$" + bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=8)).decode()[4:]
    home = root / "var" / "mail" / DEMO_USER
    home.mkdir(parents=True, exist_ok=True)
    uid, gid = demo_ids(root)
    line = f"{DEMO_USER}:{{BLF-CRYPT}}{hashed}:{uid}:{gid}::{home}::\n"
    fd = os.open(passwd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(line)
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    return DemoLogin(DEMO_USER, password)
