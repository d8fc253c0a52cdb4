"""The passdb chain evaluator, sans I/O (src/auth/auth-request.c,
auth_request_handle_passdb_callback()).

The evaluator is fed one lookup result at a time and says which passdb to
run next, so every rule can be tested as a table without any driver. State,
as in Dovecot: `success` (initially false), `password_verified`
(skip_password_check), and whether an internal failure was seen.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


class PassdbResult(enum.Enum):
    OK = "ok"
    PASSWORD_MISMATCH = "password mismatch"
    USER_UNKNOWN = "unknown user"
    SCHEME_NOT_AVAILABLE = "scheme not available"
    INTERNAL_FAILURE = "internal failure"
    USER_DISABLED = "user disabled"
    PASS_EXPIRED = "password expired"
    NEXT = "next"  # the `noauthenticate` field


class Rule(enum.Enum):
    RETURN = "return"
    RETURN_OK = "return-ok"
    RETURN_FAIL = "return-fail"
    CONTINUE = "continue"
    CONTINUE_OK = "continue-ok"
    CONTINUE_FAIL = "continue-fail"


class Skip(enum.Enum):
    NEVER = "never"
    AUTHENTICATED = "authenticated"
    UNAUTHENTICATED = "unauthenticated"
    # userdb only
    FOUND = "found"
    NOTFOUND = "notfound"


@dataclass(frozen=True, slots=True)
class DbRules:
    """What the evaluator needs to know of one passdb/userdb block."""

    deny: bool = False
    skip: Skip = Skip.NEVER
    result_success: Rule = Rule.RETURN_OK
    result_failure: Rule = Rule.CONTINUE
    result_internalfail: Rule = Rule.CONTINUE
    # mechanisms / username_filter verdict for the request at hand
    applicable: bool = True


# A chain position: ("master", i) or ("normal", i).
Position = tuple[str, int]


@dataclass(slots=True)
class ChainState:
    success: bool = False
    password_verified: bool = False
    seen_internal_failure: bool = False
    seen_user_unknown: bool = False
    fields: dict[str, str] = field(default_factory=dict)
    final: PassdbResult | None = None  # set when the chain has ended
    # True once a master passdb accepted the master user (login switches to target)
    master_accepted: bool = False
    log: list[str] = field(default_factory=list)


class PassdbChain:
    """Walks `normal` passdbs (after `master` ones for a master login)."""

    def __init__(self, normal: Sequence[DbRules], master: Sequence[DbRules] = (),
                 master_login: bool = False) -> None:
        self.normal = list(normal)
        self.master = list(master)
        self.state = ChainState()
        self.position: Position | None = None
        start = self._next_from(("master", 0) if master_login else ("normal", 0))
        if start is None:
            self.state.final = PassdbResult.INTERNAL_FAILURE
            self.state.log.append("All password databases were skipped")
        self.position = start

    @property
    def done(self) -> bool:
        return self.state.final is not None

    @property
    def succeeded(self) -> bool:
        return self.state.final is PassdbResult.OK

    def _rules(self, pos: Position) -> DbRules:
        return (self.master if pos[0] == "master" else self.normal)[pos[1]]

    def _want_skip(self, rules: DbRules) -> bool:
        if not rules.applicable:
            return True
        if rules.skip is Skip.AUTHENTICATED:
            return self.state.password_verified
        if rules.skip is Skip.UNAUTHENTICATED:
            return not self.state.password_verified
        return False

    def _next_from(self, pos: Position) -> Position | None:
        kind, index = pos
        dbs = self.master if kind == "master" else self.normal
        while index < len(dbs):
            if not self._want_skip(dbs[index]):
                return (kind, index)
            index += 1
        return None

    def feed(self, result: PassdbResult, fields: Mapping[str, str] | None = None,
             failed_inside: bool = False) -> Position | None:
        """Record the current passdb's result; return the next position or None."""
        if self.position is None or self.done:
            raise RuntimeError("passdb chain already finished")
        state = self.state
        pos = self.position
        rules = self._rules(pos)
        if rules.deny and result is not PassdbResult.USER_UNKNOWN:
            # A deny passdb only lets a login through when the user is not listed.
            if result is not PassdbResult.INTERNAL_FAILURE:
                state.log.append("User found from deny passdb")
                result = PassdbResult.USER_DISABLED
            self._finish(result)
            return None
        if failed_inside and result is PassdbResult.OK:
            # e.g. allow_nets mismatch: fail this passdb, the next may succeed
            result = PassdbResult.USER_UNKNOWN
        if result is PassdbResult.USER_DISABLED or result is PassdbResult.PASS_EXPIRED:
            self._finish(result)
            return None
        if result is PassdbResult.OK:
            rule = rules.result_success
        elif result is PassdbResult.INTERNAL_FAILURE:
            rule = rules.result_internalfail
        elif result is PassdbResult.NEXT:
            rule = Rule.CONTINUE
        else:
            rule = rules.result_failure

        go_on = False
        if rule is Rule.RETURN_OK:
            state.success = True
        elif rule is Rule.RETURN_FAIL:
            state.success = False
        elif rule is Rule.CONTINUE:
            go_on = True
            if result is PassdbResult.OK:
                state.password_verified = True
        elif rule is Rule.CONTINUE_OK:
            go_on = True
            state.success = True
            state.password_verified = True
        elif rule is Rule.CONTINUE_FAIL:
            go_on = True
            state.success = False

        if result in (PassdbResult.OK, PassdbResult.NEXT) and fields:
            state.fields.update(fields)  # kept (snapshot)
        # else: this passdb's fields are rolled back (never merged)

        if pos[0] == "master" and result is PassdbResult.OK:
            # The master user is authenticated: continue (if at all) with the
            # normal passdbs for the login user.
            state.master_accepted = True
            nxt = self._next_from(("normal", 0))
        else:
            nxt = self._next_from((pos[0], pos[1] + 1))

        if go_on and nxt is not None:
            if result is PassdbResult.USER_UNKNOWN:
                state.seen_user_unknown = True
            elif result is PassdbResult.INTERNAL_FAILURE:
                state.seen_internal_failure = True
            self.position = nxt
            return nxt
        if result is PassdbResult.NEXT:
            state.log.append("Last passdb had noauthenticate field, cannot authenticate user")
            self._finish(PassdbResult.INTERNAL_FAILURE)
            return None
        if state.success:
            self._finish(PassdbResult.OK)
            return None
        if state.seen_internal_failure or result is PassdbResult.INTERNAL_FAILURE:
            self._finish(PassdbResult.INTERNAL_FAILURE)
            return None
        if result is PassdbResult.OK:
            # e.g. `return` or a trailing `continue` after a verified password:
            # success was never set, so the login fails.
            self._finish(PassdbResult.PASSWORD_MISMATCH)
            return None
        self._finish(result)
        return None

    def _finish(self, result: PassdbResult) -> None:
        self.state.final = result
        self.position = None


def parse_rule(value: str, default: Rule) -> Rule:
    if not value:
        return default
    try:
        return Rule(value.strip().lower())
    except ValueError:
        raise ValueError(f"Unknown result rule: {value}") from None


def parse_skip(value: str, userdb: bool = False) -> Skip:
    text = (value or "never").strip().lower()
    allowed = ("never", "found", "notfound") if userdb else ("never", "authenticated", "unauthenticated")
    if text not in allowed:
        raise ValueError(f"Invalid skip value: {value}")
    return Skip(text)


@dataclass(slots=True)
class UserdbChainState:
    success: bool = False
    seen_internal_failure: bool = False
    found: bool = False
    fields: dict[str, str] = field(default_factory=dict)
    final: PassdbResult | None = None


class UserdbChain:
    """Userdbs in order with the same six rules; results OK / USER_UNKNOWN /
    INTERNAL_FAILURE (auth_request_userdb_callback())."""

    def __init__(self, userdbs: Sequence[DbRules]) -> None:
        self.userdbs = list(userdbs)
        self.state = UserdbChainState()
        self.index: int | None = self._next_from(0)
        if self.index is None:
            self.state.final = PassdbResult.USER_UNKNOWN

    def _next_from(self, index: int) -> int | None:
        while index < len(self.userdbs):
            rules = self.userdbs[index]
            # auth_request_want_skip_userdb(): "found" means userdb_success so far
            skip = not rules.applicable or (rules.skip is Skip.FOUND and self.state.success) or \
                (rules.skip is Skip.NOTFOUND and not self.state.success)
            if not skip:
                return index
            index += 1
        return None

    @property
    def done(self) -> bool:
        return self.state.final is not None

    def feed(self, result: PassdbResult, fields: Mapping[str, str] | None = None) -> int | None:
        if self.index is None or self.done:
            raise RuntimeError("userdb chain already finished")
        state = self.state
        rules = self.userdbs[self.index]
        if result is PassdbResult.OK:
            rule = rules.result_success
            state.found = True
            if fields:
                state.fields.update(fields)
        elif result is PassdbResult.INTERNAL_FAILURE:
            rule = rules.result_internalfail
        else:
            rule = rules.result_failure
        go_on = rule in (Rule.CONTINUE, Rule.CONTINUE_OK, Rule.CONTINUE_FAIL)
        if rule in (Rule.RETURN_OK, Rule.CONTINUE_OK):
            state.success = True
        elif rule in (Rule.RETURN_FAIL, Rule.CONTINUE_FAIL):
            state.success = False
        nxt = self._next_from(self.index + 1)
        if go_on and nxt is not None:
            if result is PassdbResult.INTERNAL_FAILURE:
                state.seen_internal_failure = True
            self.index = nxt
            return nxt
        self.index = None
        if state.success:
            state.final = PassdbResult.OK
        elif state.seen_internal_failure or result is PassdbResult.INTERNAL_FAILURE:
            state.final = PassdbResult.INTERNAL_FAILURE
        else:
            state.final = PassdbResult.USER_UNKNOWN
        return None
