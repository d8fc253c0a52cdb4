"""CAPABILITY lists in Dovecot 2.3's shape (spec section 7.1, 7.2;
src/imap-login/imap-login-client.c, src/imap/imap-common.h).

Only extensions that this server implements are listed after login; the
order follows Dovecot's so clients and diff-based checks see the same line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PRE_LOGIN_BASE = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE"

# Dovecot's post-login list minus what we do not implement (URL-PARTIAL,
# CATENATE, CONTEXT=SEARCH, SAVEDATE, NOTIFY), in
# Dovecot's order. I18NLEVEL=1 (RFC 5255): SEARCH and SORT compare with
# i;unicode-casemap (search/text.py fold), as Dovecot.
POST_LOGIN_BASE = ("IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY "
                   "THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND UNSELECT "
                   "CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC "
                   "ESEARCH ESORT SEARCHRES WITHIN LIST-STATUS BINARY MOVE SNIPPET=FUZZY "
                   "PREVIEW=FUZZY PREVIEW STATUS=SIZE")


def literal_cap(settings: Mapping[str, Any]) -> str:
    return "LITERAL-" if settings.get("imap_literal_minus", False) else "LITERAL+"


def _custom(settings: Mapping[str, Any]) -> str:
    return str(settings.get("imap_capability", "") or "").strip()


def pre_login(settings: Mapping[str, Any], *, starttls: bool, login_disabled: bool,
              mechanisms: list[str]) -> str:
    custom = _custom(settings)
    if custom and not custom.startswith("+"):
        words = [custom]
    else:
        words = [PRE_LOGIN_BASE]
        if custom:
            words.append(custom[1:].strip())
        words.append(literal_cap(settings))
    if starttls:
        words.append("STARTTLS")
    if login_disabled:
        words.append("LOGINDISABLED")
    words.extend(f"AUTH={m}" for m in mechanisms)
    return " ".join(w for w in words if w)


def post_login(settings: Mapping[str, Any], *, special_use: bool, compress: bool) -> str:
    custom = _custom(settings)
    if custom and not custom.startswith("+"):
        return custom
    words = [POST_LOGIN_BASE]
    if custom:
        words.append(custom[1:].strip())
    words.append(literal_cap(settings))
    if special_use:
        words.append("SPECIAL-USE")
    if compress:
        words.append("COMPRESS=DEFLATE")
    return " ".join(w for w in words if w)
