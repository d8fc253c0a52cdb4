"""Password schemes against the real doveadm (spec section 4)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maa_server.auth import schemes
from maa_server.auth.digests import cram_md5_context, hmac_md5_from_context

FIXTURES = Path(__file__).parents[2] / "fixtures" / "auth"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
HAVE_DOVEADM = Path(DOVEADM).exists()
SLOW = {"ARGON2I", "ARGON2ID"}  # libsodium at 32-64 MiB per hash: keep the count low


def _rows(name: str) -> list[tuple[str, str, str]]:
    out = []
    for line in (FIXTURES / name).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        label, middle, stored = line.split("\t")
        out.append((label, middle, stored))
    return out


def _user_of(args: str) -> str:
    words = args.split()
    return words[words.index("-u") + 1] if "-u" in words else ""


DOVEADM_ROWS = _rows("doveadm_pw_vectors.tsv")


@pytest.mark.parametrize("scheme,args,stored", DOVEADM_ROWS, ids=[r[1] for r in DOVEADM_ROWS])
def test_doveadm_generated_hash_verifies(scheme: str, args: str, stored: str) -> None:
    user = _user_of(args)
    parsed = schemes.parse_stored(stored)
    if parsed.base_scheme == "PLAIN-TRUNC":
        # doveadm writes PLAIN-TRUNC without the `<len>-` prefix and cannot
        # verify it itself; we fail the same way.
        with pytest.raises(schemes.SchemeError, match="missing length"):
            schemes.verify(parsed, "secret", user)
        return
    assert schemes.verify(parsed, "secret", user)
    assert not schemes.verify(parsed, "Secret", user)


def test_fixture_covers_every_listed_scheme() -> None:
    covered = {row[0].upper() for row in DOVEADM_ROWS}
    assert set(schemes.DOVEADM_LIST_ORDER) <= covered
    assert set(schemes.DOVEADM_LIST_ORDER) == {n for n in schemes.SCHEMES}


SPEC_ROWS = _rows("spec_vectors.tsv")


@pytest.mark.parametrize("label,user,stored", SPEC_ROWS, ids=[r[0] for r in SPEC_ROWS])
def test_spec_vectors(label: str, user: str, stored: str) -> None:
    parsed = schemes.parse_stored(stored)
    assert schemes.verify(parsed, "secret", user)
    assert not schemes.verify(parsed, "secreT", user)


@pytest.mark.parametrize("scheme", [s for s in schemes.DOVEADM_LIST_ORDER if s != "PLAIN-TRUNC"])
def test_generate_then_verify(scheme: str) -> None:
    user = "alice@example.com"
    hashed = schemes.generate(scheme, "pässword", user)
    assert hashed.startswith("{" + scheme + "}")
    parsed = schemes.parse_stored(hashed)
    assert schemes.verify(parsed, "pässword", user)
    assert not schemes.verify(parsed, "password", user)


@pytest.mark.skipif(not HAVE_DOVEADM, reason="doveadm not installed")
@pytest.mark.parametrize("scheme", [s for s in schemes.DOVEADM_LIST_ORDER
                                    if s not in ("PLAIN-TRUNC",)] + ["SHA256.HEX", "SSHA.B64"])
def test_our_hashes_verify_with_real_doveadm(scheme: str) -> None:
    user = "alice@example.com"
    hashed = schemes.generate(scheme, "secret", user)
    cmd = [DOVEADM, "pw", "-t", hashed, "-p", "secret", "-u", user]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{hashed} (verified)"


def test_rounds() -> None:
    assert "$6$rounds=10000$" in schemes.generate("SHA512-CRYPT", "x", rounds=10000)
    assert "rounds=" not in schemes.generate("SHA256-CRYPT", "x", rounds=5000)
    assert schemes.generate("BLF-CRYPT", "x", rounds=3).startswith("{BLF-CRYPT}$2y$04$")
    assert "$10000$" in schemes.generate("PBKDF2", "x", rounds=10000)


def test_default_crypt_is_bcrypt_2y() -> None:
    assert schemes.generate("CRYPT", "x").startswith("{CRYPT}$2y$05$")


def test_parse_stored_rules() -> None:
    assert schemes.parse_stored("{sha256.hex}abc") == schemes.StoredPassword("SHA256.HEX", "abc")
    # a bare $1$ string is MD5-CRYPT, cut after the third `$` field
    assert schemes.parse_stored("$1$salt$hash$junk", "PLAIN") == \
        schemes.StoredPassword("MD5-CRYPT", "$1$salt$hash")
    assert schemes.parse_stored("secret", "plain") == schemes.StoredPassword("PLAIN", "secret")
    assert schemes.parse_stored("$6$x$y").scheme == "CRYPT"


def test_unknown_scheme_and_suffix() -> None:
    with pytest.raises(schemes.UnknownScheme):
        schemes.verify(schemes.parse_stored("{FOO}bar"), "bar")
    with pytest.raises(schemes.UnknownScheme):
        schemes.verify(schemes.parse_stored("{SHA256.XYZ}bar"), "bar")


def test_fixed_length_digest_accepts_hex_or_base64() -> None:
    for stored in ("{PLAIN-MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==", "{LDAP-MD5}5ebe2294ecd0e0f08eab7690d2a6ee69",
                   "{SHA}e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4"):
        assert schemes.verify(schemes.parse_stored(stored), "secret")


def test_any_crypt_label_verifies_any_crypt_string() -> None:
    yescrypt = "$y$j9T$W2.f/dXcw31osd1/4FoPo.$i0VD8sLaHi4tu/Wh40.5CFWfu7GGoLhOovZ59SVnROD"
    assert schemes.verify(schemes.StoredPassword("SHA512-CRYPT", yescrypt), "secret")


def test_empty_crypt_never_matches() -> None:
    assert not schemes.verify(schemes.StoredPassword("CRYPT", ""), "")


def test_plain_trunc() -> None:
    stored = schemes.StoredPassword("PLAIN-TRUNC", "3-sec")
    assert schemes.verify(stored, "secretxx")  # only the first 3 bytes count
    assert not schemes.verify(stored, "se")


def test_credentials_for_sasl() -> None:
    plain = schemes.parse_stored("{PLAIN}secret")
    cram = schemes.credentials(plain, "CRAM-MD5")
    assert cram == cram_md5_context(b"secret")
    stored_cram = schemes.parse_stored(
        "{HMAC-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56")
    assert schemes.credentials(stored_cram, "CRAM-MD5") == cram
    assert schemes.credentials(schemes.parse_stored(
        "{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols="), "CRAM-MD5") is None
    scram = schemes.credentials(plain, "SCRAM-SHA-256")
    assert scram is not None and scram.startswith(b"4096,")


def test_cram_md5_context_matches_rfc2195_example() -> None:
    # RFC 2195 section 2: key "tanstaaftanstaaf"
    challenge = b"<1896.697170952@postoffice.reston.mci.net>"
    context = cram_md5_context(b"tanstaaftanstaaf")
    assert hmac_md5_from_context(context, challenge).hex() == "b913a602c7eda7a495b4e6e7334d3890"


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=100), st.binary(max_size=200))
def test_cram_context_is_hmac_md5(key: bytes, message: bytes) -> None:
    import hashlib
    import hmac
    assert hmac_md5_from_context(cram_md5_context(key), message) == \
        hmac.new(key, message, hashlib.md5).digest()
