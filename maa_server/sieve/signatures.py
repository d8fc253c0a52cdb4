"""What each Sieve command and test accepts (RFC 5228 and the extensions
Pigeonhole enables by default), as data the validator walks.

A tag kind is None (a flag), "string", "stringlist" or "number". Tags in a
group (MATCH-TYPE, COMPARATOR, ADDRESS-PART) exclude each other."""

from __future__ import annotations

from dataclasses import dataclass, field

# Capabilities enabled by default, as Pigeonhole's default `sieve_extensions`
# (which leaves out ereject: `require "ereject"` fails there too); `require`
# of anything else is an error.
EXTENSIONS = frozenset({
    "fileinto", "reject", "envelope", "encoded-character", "vacation", "subaddress", "comparator-i;ascii-numeric", "comparator-i;octet",
    "comparator-i;ascii-casemap", "relational", "regex", "imap4flags", "copy", "include",
    "body", "variables", "environment", "mailbox", "date", "index", "ihave", "duplicate",
    "enotify", "mime", "foreverypart", "extracttext",
})
# Implemented but off unless the configuration enables them (sieve_extensions =
# +ereject +vacation-seconds), as in Pigeonhole 0.5's defaults.
OPTIONAL_EXTENSIONS = frozenset({"ereject", "vacation-seconds", "spamtest", "spamtestplus", "virustest"})

MATCH_TYPES = {"is": None, "contains": None, "matches": None, "regex": "regex",
               "count": "relational", "value": "relational"}
ADDRESS_PARTS = {"all": None, "localpart": None, "domain": None, "user": "subaddress",
                 "detail": "subaddress"}
SET_MODIFIERS = ("lower", "upper", "lowerfirst", "upperfirst", "quotewildcard", "quoteregex",
                 "length", "encodeurl")


@dataclass(frozen=True)
class TagSpec:
    kind: str | None = None  # argument kind following the tag
    extension: str | None = None
    group: str = ""  # MATCH-TYPE / COMPARATOR / ADDRESS-PART / modifier groups


@dataclass(frozen=True)
class Signature:
    extension: str | None = None
    positional: tuple[str, ...] = ()  # kinds: "string", "stringlist", "number"
    optional_leading: int = 0  # how many leading positionals may be left out
    tags: dict[str, TagSpec] = field(default_factory=dict)
    tests: str = "none"  # none / one / list
    block: bool = False
    names: tuple[str, ...] = ()  # names of positionals, for error messages


def _match_tags(comparator: bool = True) -> dict[str, TagSpec]:
    tags = {name: TagSpec("string" if ext == "relational" else None, ext, "MATCH-TYPE")
            for name, ext in MATCH_TYPES.items()}
    if comparator:
        tags["comparator"] = TagSpec("string", None, "COMPARATOR")
    return tags


def _address_tags() -> dict[str, TagSpec]:
    return {name: TagSpec(None, ext, "ADDRESS-PART") for name, ext in ADDRESS_PARTS.items()}


_INDEX = {"index": TagSpec("number", "index"), "last": TagSpec(None, "index")}
# RFC 5703 4: :mime and :anychild on header / address / exists, and the
# options that pick a part of a Content-Type / Content-Disposition value.
_MIME = {"mime": TagSpec(None, "mime"), "anychild": TagSpec(None, "mime")}
_MIME_OPTIONS = {"type": TagSpec(None, "mime", "MIMEOPT"), "subtype": TagSpec(None, "mime", "MIMEOPT"),
                 "contenttype": TagSpec(None, "mime", "MIMEOPT"),
                 "param": TagSpec("stringlist", "mime", "MIMEOPT")}

COMMANDS: dict[str, Signature] = {
    "require": Signature(positional=("stringlist",), names=("capabilities",)),
    "if": Signature(tests="one", block=True),
    "elsif": Signature(tests="one", block=True),
    "else": Signature(block=True),
    "stop": Signature(),
    "keep": Signature(tags={"flags": TagSpec("stringlist", "imap4flags")}),
    "discard": Signature(),
    "fileinto": Signature("fileinto", ("string",), tags={
        "copy": TagSpec(None, "copy"), "create": TagSpec(None, "mailbox"),
        "flags": TagSpec("stringlist", "imap4flags")}, names=("folder",)),
    "redirect": Signature(None, ("string",), tags={"copy": TagSpec(None, "copy")}, names=("address",)),
    "reject": Signature("reject", ("string",), names=("reason",)),
    "ereject": Signature("ereject", ("string",), names=("reason",)),
    "vacation": Signature("vacation", ("string",), tags={
        "days": TagSpec("number", None, "period"), "seconds": TagSpec("number", "vacation-seconds", "period"),
        "subject": TagSpec("string"), "from": TagSpec("string"), "addresses": TagSpec("stringlist"),
        "mime": TagSpec(None), "handle": TagSpec("string")}, names=("reason",)),
    "setflag": Signature("imap4flags", ("string", "stringlist"), 1, names=("variable", "flags")),
    "addflag": Signature("imap4flags", ("string", "stringlist"), 1, names=("variable", "flags")),
    "removeflag": Signature("imap4flags", ("string", "stringlist"), 1, names=("variable", "flags")),
    "set": Signature("variables", ("string", "string"),
                     tags={m: TagSpec(None, None, "modifier") for m in SET_MODIFIERS},
                     names=("name", "value")),
    "include": Signature("include", ("string",), tags={
        "personal": TagSpec(None, None, "LOCATION"), "global": TagSpec(None, None, "LOCATION"),
        "once": TagSpec(None), "optional": TagSpec(None)}, names=("script-name",)),
    "return": Signature("include"),
    "global": Signature("include", ("stringlist",), names=("variables",)),
    "foreverypart": Signature("foreverypart", tags={"name": TagSpec("string")}, block=True),
    "break": Signature("foreverypart", tags={"name": TagSpec("string")}),
    "extracttext": Signature("extracttext", ("string",), tags={
        **{m: TagSpec(None, None, "modifier") for m in SET_MODIFIERS}, "first": TagSpec("number")},
        names=("varname",)),
    "notify": Signature("enotify", ("string",), tags={
        "from": TagSpec("string"), "importance": TagSpec("string"),
        "options": TagSpec("stringlist"), "message": TagSpec("string")}, names=("method",)),
}

TESTS: dict[str, Signature] = {
    "address": Signature(None, ("stringlist", "stringlist"),
                         tags={**_match_tags(), **_address_tags(), **_INDEX, **_MIME},
                         names=("header list", "key list")),
    "envelope": Signature("envelope", ("stringlist", "stringlist"),
                          tags={**_match_tags(), **_address_tags()},
                          names=("envelope part", "key list")),
    "header": Signature(None, ("stringlist", "stringlist"),
                        tags={**_match_tags(), **_INDEX, **_MIME, **_MIME_OPTIONS},
                        names=("header names", "key list")),
    "exists": Signature(None, ("stringlist",), tags=dict(_MIME), names=("header names",)),
    "size": Signature(None, ("number",), tags={
        "over": TagSpec(None, None, "SIZE"), "under": TagSpec(None, None, "SIZE")}, names=("limit",)),
    "not": Signature(tests="one"),
    "anyof": Signature(tests="list"),
    "allof": Signature(tests="list"),
    "true": Signature(),
    "false": Signature(),
    "body": Signature("body", ("stringlist",), tags={
        **_match_tags(), "raw": TagSpec(None, None, "BODY-TRANSFORM"),
        "content": TagSpec("stringlist", None, "BODY-TRANSFORM"),
        "text": TagSpec(None, None, "BODY-TRANSFORM")}, names=("key list",)),
    "string": Signature("variables", ("stringlist", "stringlist"), tags=_match_tags(),
                        names=("source", "key list")),
    "hasflag": Signature("imap4flags", ("stringlist", "stringlist"), 1, tags=_match_tags(),
                         names=("variable list", "list of flags")),
    "mailboxexists": Signature("mailbox", ("stringlist",), names=("mailbox names",)),
    "date": Signature("date", ("string", "string", "stringlist"), tags={
        **_match_tags(), **_INDEX, "zone": TagSpec("string", None, "ZONE"),
        "originalzone": TagSpec(None, None, "ZONE")}, names=("header name", "date part", "key list")),
    "currentdate": Signature("date", ("string", "stringlist"), tags={
        **_match_tags(), "zone": TagSpec("string", None, "ZONE")}, names=("date part", "key list")),
    "environment": Signature("environment", ("string", "stringlist"), tags=_match_tags(),
                             names=("name", "key list")),
    "ihave": Signature("ihave", ("stringlist",), names=("capabilities",)),
    "spamtest": Signature("spamtest", ("string",), tags={
        **_match_tags(), "percent": TagSpec(None, "spamtestplus")}, names=("value",)),
    "virustest": Signature("virustest", ("string",), tags=_match_tags(), names=("value",)),
    "valid_notify_method": Signature("enotify", ("stringlist",), names=("notification-uris",)),
    "notify_method_capability": Signature("enotify", ("string", "string", "stringlist"),
                                          tags=_match_tags(),
                                          names=("notification-uri", "notification-capability",
                                                 "key-list")),
    "duplicate": Signature("duplicate", (), tags={
        "handle": TagSpec("string"), "header": TagSpec("string", None, "ID"),
        "uniqueid": TagSpec("string", None, "ID"), "seconds": TagSpec("number"),
        "last": TagSpec(None)}),
}
