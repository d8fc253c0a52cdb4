"""The passdb chain evaluator, table-driven (spec 3.2; auth-request.c
auth_request_handle_passdb_callback())."""

from __future__ import annotations

import pytest

from maa_server.auth.chain import (
    DbRules,
    PassdbChain,
    PassdbResult,
    Rule,
    Skip,
    UserdbChain,
)

R = PassdbResult
OK, MISMATCH, UNKNOWN, INTERNAL = R.OK, R.PASSWORD_MISMATCH, R.USER_UNKNOWN, R.INTERNAL_FAILURE
ALL_RULES = list(Rule)


def rules_for(result: PassdbResult, rule: Rule, **kw: object) -> DbRules:
    """A passdb whose rule for `result` is `rule` (others default)."""
    if result is OK:
        return DbRules(result_success=rule, **kw)  # type: ignore[arg-type]
    if result is INTERNAL:
        return DbRules(result_internalfail=rule, **kw)  # type: ignore[arg-type]
    return DbRules(result_failure=rule, **kw)  # type: ignore[arg-type]


def run(chain: PassdbChain, results: list[PassdbResult]) -> PassdbResult:
    it = iter(results)
    while chain.position is not None:
        chain.feed(next(it))
    assert chain.state.final is not None
    return chain.state.final


# One passdb: every result under every rule. "fail" keeps the result's own
# kind; `return-ok` turns even a failure into success (Dovecot's docs warn).
SINGLE = {
    OK: {Rule.RETURN_OK: OK, Rule.RETURN_FAIL: MISMATCH, Rule.RETURN: MISMATCH,
         Rule.CONTINUE: MISMATCH, Rule.CONTINUE_OK: OK, Rule.CONTINUE_FAIL: MISMATCH},
    MISMATCH: {Rule.RETURN_OK: OK, Rule.RETURN_FAIL: MISMATCH, Rule.RETURN: MISMATCH,
               Rule.CONTINUE: MISMATCH, Rule.CONTINUE_OK: OK, Rule.CONTINUE_FAIL: MISMATCH},
    UNKNOWN: {Rule.RETURN_OK: OK, Rule.RETURN_FAIL: UNKNOWN, Rule.RETURN: UNKNOWN,
              Rule.CONTINUE: UNKNOWN, Rule.CONTINUE_OK: OK, Rule.CONTINUE_FAIL: UNKNOWN},
    INTERNAL: {Rule.RETURN_OK: OK, Rule.RETURN_FAIL: INTERNAL, Rule.RETURN: INTERNAL,
               Rule.CONTINUE: INTERNAL, Rule.CONTINUE_OK: OK, Rule.CONTINUE_FAIL: INTERNAL},
}


@pytest.mark.parametrize("result", list(SINGLE))
@pytest.mark.parametrize("rule", ALL_RULES)
def test_single_passdb_every_result_every_rule(result: PassdbResult, rule: Rule) -> None:
    chain = PassdbChain([rules_for(result, rule)])
    assert run(chain, [result]) is SINGLE[result][rule]


# Two passdbs: the first one's rule, then the second's result (default rules
# return-ok / continue / continue). Columns: second OK, second MISMATCH.
# (first result, first rule) -> (final if second OK, final if second MISMATCH,
#                                password_verified when the second runs)
TWO = [
    (OK, Rule.RETURN_OK, None, None, None),  # stops at the first
    (OK, Rule.RETURN_FAIL, None, None, None),
    (OK, Rule.RETURN, None, None, None),
    (OK, Rule.CONTINUE, OK, MISMATCH, True),
    (OK, Rule.CONTINUE_OK, OK, OK, True),
    (OK, Rule.CONTINUE_FAIL, OK, MISMATCH, False),  # later passdbs verify again
    (MISMATCH, Rule.RETURN_OK, None, None, None),
    (MISMATCH, Rule.RETURN_FAIL, None, None, None),
    (MISMATCH, Rule.RETURN, None, None, None),
    (MISMATCH, Rule.CONTINUE, OK, MISMATCH, False),
    # continue-ok marks the password verified whatever the result (as Dovecot)
    (MISMATCH, Rule.CONTINUE_OK, OK, OK, True),
    (MISMATCH, Rule.CONTINUE_FAIL, OK, MISMATCH, False),
    (INTERNAL, Rule.RETURN_OK, None, None, None),
    (INTERNAL, Rule.RETURN_FAIL, None, None, None),
    (INTERNAL, Rule.RETURN, None, None, None),
    # an internal failure earlier makes a later plain failure temporary
    (INTERNAL, Rule.CONTINUE, OK, INTERNAL, False),
    (INTERNAL, Rule.CONTINUE_OK, OK, OK, True),
    (INTERNAL, Rule.CONTINUE_FAIL, OK, INTERNAL, False),
]


@pytest.mark.parametrize("first,rule,if_ok,if_mismatch,verified", TWO)
def test_two_passdbs(first: PassdbResult, rule: Rule, if_ok: PassdbResult | None,
                     if_mismatch: PassdbResult | None, verified: bool | None) -> None:
    for second, expected in ((OK, if_ok), (MISMATCH, if_mismatch)):
        chain = PassdbChain([rules_for(first, rule), DbRules()])
        nxt = chain.feed(first)
        if expected is None:
            assert nxt is None, "a return-* rule stops the chain"
            assert chain.state.final is SINGLE[first][rule]
            continue
        assert nxt == ("normal", 1)
        assert chain.state.password_verified is verified
        chain.feed(second)
        assert chain.state.final is expected, (first, rule, second)


def test_defaults_first_acceptor_wins() -> None:
    chain = PassdbChain([DbRules(), DbRules(), DbRules()])
    assert run(chain, [UNKNOWN, MISMATCH, OK]) is OK
    chain = PassdbChain([DbRules(), DbRules()])
    assert run(chain, [UNKNOWN, MISMATCH]) is MISMATCH
    chain = PassdbChain([DbRules(), DbRules()])
    assert run(chain, [INTERNAL, UNKNOWN]) is INTERNAL


@pytest.mark.parametrize("later", [OK, MISMATCH, UNKNOWN, INTERNAL])
@pytest.mark.parametrize("deny_result", [OK, MISMATCH, R.SCHEME_NOT_AVAILABLE, R.NEXT])
def test_deny_passdb_found_user_fails_whatever_follows(deny_result: PassdbResult,
                                                       later: PassdbResult) -> None:
    chain = PassdbChain([DbRules(deny=True, result_success=Rule.CONTINUE_OK), DbRules()])
    assert chain.feed(deny_result) is None
    assert chain.state.final is R.USER_DISABLED
    assert "User found from deny passdb" in chain.state.log


def test_deny_passdb_unknown_user_goes_on_and_internal_failure_stops() -> None:
    chain = PassdbChain([DbRules(deny=True), DbRules()])
    assert chain.feed(UNKNOWN) == ("normal", 1)
    chain.feed(OK)
    assert chain.succeeded
    chain = PassdbChain([DbRules(deny=True), DbRules()])
    assert chain.feed(INTERNAL) is None
    assert chain.state.final is INTERNAL


@pytest.mark.parametrize("result", [R.USER_DISABLED, R.PASS_EXPIRED])
def test_disabled_and_expired_end_without_rules(result: PassdbResult) -> None:
    chain = PassdbChain([DbRules(result_failure=Rule.RETURN_OK), DbRules()])
    assert chain.feed(result) is None
    assert chain.state.final is result


def test_skip_authenticated_and_unauthenticated() -> None:
    # passdb 2 only adds fields when nobody verified yet; passdb 3 only after.
    dbs = [DbRules(result_success=Rule.CONTINUE), DbRules(skip=Skip.AUTHENTICATED),
           DbRules(skip=Skip.UNAUTHENTICATED)]
    chain = PassdbChain(dbs)
    assert chain.feed(OK) == ("normal", 2)
    chain.feed(OK)
    assert chain.succeeded
    chain = PassdbChain(dbs)
    assert chain.feed(MISMATCH) == ("normal", 1)
    assert chain.feed(MISMATCH) is None  # passdb 3 skipped: nobody authenticated
    assert chain.state.final is MISMATCH


def test_all_skipped_is_internal_failure() -> None:
    chain = PassdbChain([DbRules(applicable=False)])
    assert chain.done and chain.state.final is INTERNAL


def test_not_applicable_passdbs_are_skipped() -> None:
    chain = PassdbChain([DbRules(applicable=False), DbRules()])
    assert chain.position == ("normal", 1)


def test_noauthenticate_then_verifier() -> None:
    chain = PassdbChain([DbRules(), DbRules()])
    assert chain.feed(R.NEXT, {"quota": "1G"}) == ("normal", 1)
    chain.feed(OK, {"home": "/h"})
    assert chain.succeeded
    assert chain.state.fields == {"quota": "1G", "home": "/h"}


def test_noauthenticate_on_last_passdb_is_internal_failure() -> None:
    chain = PassdbChain([DbRules()])
    chain.feed(R.NEXT)
    assert chain.state.final is INTERNAL
    assert any("noauthenticate" in line for line in chain.state.log)


def test_fields_of_failed_passdbs_are_rolled_back() -> None:
    chain = PassdbChain([DbRules(), DbRules()])
    chain.feed(MISMATCH, {"bad": "1"})
    chain.feed(OK, {"good": "1"})
    assert chain.state.fields == {"good": "1"}


def test_failure_inside_lookup_turns_ok_into_unknown() -> None:
    # e.g. allow_nets mismatch: this passdb fails, the next may still succeed
    chain = PassdbChain([DbRules(), DbRules()])
    assert chain.feed(OK, failed_inside=True) == ("normal", 1)
    chain.feed(OK)
    assert chain.succeeded
    chain = PassdbChain([DbRules()])
    chain.feed(OK, failed_inside=True)
    assert chain.state.final is UNKNOWN


def test_master_login_with_pass_continues_into_normal_passdbs() -> None:
    master = [DbRules(result_success=Rule.CONTINUE)]  # pass = yes
    chain = PassdbChain([DbRules()], master, master_login=True)
    assert chain.position == ("master", 0)
    assert chain.feed(OK) == ("normal", 0)
    assert chain.state.password_verified and chain.state.master_accepted
    chain.feed(OK)  # the target exists
    assert chain.succeeded


def test_master_login_target_unknown_fails() -> None:
    chain = PassdbChain([DbRules()], [DbRules(result_success=Rule.CONTINUE)], master_login=True)
    chain.feed(OK)
    chain.feed(UNKNOWN)
    assert chain.state.final is UNKNOWN and chain.state.master_accepted


def test_master_without_pass_succeeds_at_once() -> None:
    chain = PassdbChain([DbRules()], [DbRules()], master_login=True)
    assert chain.feed(OK) is None
    assert chain.succeeded


def test_master_wrong_password_never_reaches_normal_passdbs() -> None:
    chain = PassdbChain([DbRules()], [DbRules(result_success=Rule.CONTINUE)], master_login=True)
    assert chain.feed(MISMATCH) is None
    assert chain.state.final is MISMATCH and not chain.state.master_accepted


def test_feeding_a_finished_chain_is_an_error() -> None:
    chain = PassdbChain([DbRules()])
    chain.feed(OK)
    with pytest.raises(RuntimeError):
        chain.feed(OK)


# -- userdb chain ---------------------------------------------------------------

@pytest.mark.parametrize("rule,expected", [
    (Rule.RETURN_OK, OK), (Rule.RETURN_FAIL, UNKNOWN), (Rule.RETURN, UNKNOWN),
    (Rule.CONTINUE, UNKNOWN), (Rule.CONTINUE_OK, OK), (Rule.CONTINUE_FAIL, UNKNOWN)])
def test_userdb_single_found_every_rule(rule: Rule, expected: PassdbResult) -> None:
    chain = UserdbChain([DbRules(result_success=rule)])
    chain.feed(OK, {"uid": "1"})
    assert chain.state.final is expected


def test_userdb_fields_merge_later_overrides() -> None:
    chain = UserdbChain([DbRules(result_success=Rule.CONTINUE_OK), DbRules()])
    assert chain.feed(OK, {"uid": "1", "home": "/a"}) == 1
    chain.feed(OK, {"home": "/b"})
    assert chain.state.final is OK
    assert chain.state.fields == {"uid": "1", "home": "/b"}


def test_userdb_internal_failure_then_unknown_is_tempfail() -> None:
    chain = UserdbChain([DbRules(), DbRules()])
    chain.feed(INTERNAL)
    chain.feed(UNKNOWN)
    assert chain.state.final is INTERNAL


def test_userdb_skip_found() -> None:
    chain = UserdbChain([DbRules(result_success=Rule.CONTINUE_OK), DbRules(skip=Skip.FOUND)])
    assert chain.feed(OK) is None
    assert chain.state.final is OK
