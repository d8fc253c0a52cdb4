"""Find "Conflict in setting" cases between filters, as Dovecot's config lookup does.

src/config/config-filter.c (config_filter_parsers_get): the matching filters are
applied most specific first; a later filter that is not a superset of the one
before it (for example `protocol imap {}` after `local 127.0.0.1 { protocol imap {} }`,
or `remote` after `local`) may not set a key that is already set, even to the
same value, or the lookup fails with `Conflict in setting <key> found from
filter at <file>:<line>`. Dovecot only notices when a connection matches both;
we check every pair of filters that can match one connection at load time and
report each conflict once as a warning."""

from __future__ import annotations

from dataclasses import replace

from maa_server.config.tree import Filter, Network, Scope


def is_superset(sup: Filter, flt: Filter) -> bool:
    """config_filter_is_superset(): `sup` is no more specific than `flt` in any way."""
    if _bits(sup.local) > _bits(flt.local) or _bits(sup.remote) > _bits(flt.remote):
        return False
    if sup.local_name is not None and flt.local_name is None:
        return False
    return not (sup.protocol is not None and flt.protocol is None)


def _bits(network: Network | None) -> int:
    return network.prefixlen if network is not None else 0


def _narrower(a: Network | None, b: Network | None) -> tuple[bool, Network | None]:
    if a is None or b is None:
        return True, a or b
    if a.version != b.version:
        return False, None
    if a.subnet_of(b):  # type: ignore[arg-type]
        return True, a
    if b.subnet_of(a):  # type: ignore[arg-type]
        return True, b
    return False, None


def combine(a: Filter, b: Filter) -> Filter | None:
    """A filter describing connections that match both, or None if none can."""
    if a.protocol and b.protocol and a.protocol != b.protocol:
        if a.protocol.startswith("!") == b.protocol.startswith("!"):
            if not a.protocol.startswith("!"):
                return None  # imap vs pop3
        else:
            positive, negative = (a.protocol, b.protocol) if b.protocol.startswith("!") else (b.protocol, a.protocol)
            if positive == negative[1:]:
                return None  # imap vs !imap
    protocol = a.protocol if a.protocol and not a.protocol.startswith("!") else (b.protocol or a.protocol)
    ok_local, local = _narrower(a.local, b.local)
    ok_remote, remote = _narrower(a.remote, b.remote)
    if not (ok_local and ok_remote):
        return None
    if a.local_name and b.local_name and a.local_name != b.local_name:
        return None  # different SNI names: rarely both match; Dovecot compares them as strings
    return replace(a, protocol=protocol, local=local, remote=remote,
                   local_name=a.local_name or b.local_name)


def _matches_filter(scope_filter: Filter, request: Filter) -> bool:
    """Would `scope_filter` apply to a connection described by `request`?"""
    if scope_filter.protocol is not None:
        if request.protocol is None:
            return False
        if scope_filter.protocol.startswith("!"):
            if request.protocol == scope_filter.protocol[1:]:
                return False
        elif request.protocol != scope_filter.protocol:
            return False
    for mine, theirs in ((scope_filter.local, request.local), (scope_filter.remote, request.remote)):
        if mine is not None and (theirs is None or theirs.version != mine.version
                                 or not theirs.subnet_of(mine)):  # type: ignore[arg-type]
            return False
    return not (scope_filter.local_name is not None and scope_filter.local_name != request.local_name)


def conflicts_for(request: Filter, scopes: list[Scope]) -> list[str]:
    matching = [(i, s) for i, s in enumerate(scopes) if _matches_filter(s.filter, request)]
    matching.sort(key=lambda item: (item[1].filter.specificity(), -item[0]), reverse=True)
    ordered = [scope for _, scope in matching]
    found: list[str] = []
    seen: set[str] = set()
    for index, scope in enumerate(ordered):
        if index and not is_superset(scope.filter, ordered[index - 1].filter):
            for key in scope.assignments:
                if key in seen:
                    found.append(f"Conflict in setting {key} found from filter at {scope.file}:{scope.line}")
        seen.update(scope.assignments)
    return found


def find_conflicts(scopes: list[Scope]) -> list[str]:
    """Every conflict some connection could run into, each message once."""
    messages: list[str] = []
    requests = [scope.filter for scope in scopes]
    for i, first in enumerate(scopes):
        for second in scopes[i + 1:]:
            combined = combine(first.filter, second.filter)
            if combined is not None:
                requests.append(combined)
    for request in requests:
        for message in conflicts_for(request, scopes):
            if message not in messages:
                messages.append(message)
    return messages
