"""A minimal libpam binding over ctypes, used when the optional `python-pam`
package is not installed, so that the stock Debian `auth-system.conf.ext`
(passdb pam) works out of the box. Same calls as Dovecot's passdb-pam.c:
pam_start, a conversation that answers the password prompt, pam_authenticate,
pam_acct_mgmt, pam_end. PAM's own failure delay is replaced by ours
(PAM_FAIL_DELAY callback), as auth_failure_delay governs it."""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from typing import Any

PAM_SUCCESS = 0
PAM_PROMPT_ECHO_OFF = 1
PAM_PROMPT_ECHO_ON = 2
PAM_ERROR_MSG = 3
PAM_TEXT_INFO = 4
PAM_BUF_ERR = 5
PAM_CONV_ERR = 19
PAM_FAIL_DELAY = 10
PAM_RHOST = 4


class PamMessage(ctypes.Structure):
    _fields_ = [("msg_style", ctypes.c_int), ("msg", ctypes.c_char_p)]


class PamResponse(ctypes.Structure):
    _fields_ = [("resp", ctypes.c_void_p), ("resp_retcode", ctypes.c_int)]


CONV_FUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.POINTER(PamMessage)),
                             ctypes.POINTER(ctypes.POINTER(PamResponse)), ctypes.c_void_p)
DELAY_FUNC = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p)


class PamConv(ctypes.Structure):
    _fields_ = [("conv", CONV_FUNC), ("appdata_ptr", ctypes.c_void_p)]


@lru_cache(maxsize=1)
def _libs() -> tuple[ctypes.CDLL, ctypes.CDLL] | None:
    try:
        pam = ctypes.CDLL(ctypes.util.find_library("pam") or "libpam.so.0")
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    pam.pam_start.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(PamConv),
                              ctypes.POINTER(ctypes.c_void_p)]
    pam.pam_authenticate.argtypes = [ctypes.c_void_p, ctypes.c_int]
    pam.pam_acct_mgmt.argtypes = [ctypes.c_void_p, ctypes.c_int]
    pam.pam_end.argtypes = [ctypes.c_void_p, ctypes.c_int]
    pam.pam_set_item.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    pam.pam_strerror.argtypes = [ctypes.c_void_p, ctypes.c_int]
    pam.pam_strerror.restype = ctypes.c_char_p
    libc.calloc.restype = ctypes.c_void_p
    libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
    libc.strdup.restype = ctypes.c_void_p
    libc.strdup.argtypes = [ctypes.c_char_p]
    return pam, libc


def available() -> bool:
    return _libs() is not None


def authenticate(user: str, password: str, service: str, rhost: str = "") -> tuple[int, str]:
    """(PAM return code, pam_strerror text); code -1 when libpam is missing.
    Blocking: call from a worker thread."""
    libs = _libs()
    if libs is None:
        return -1, "libpam.so.0 is not available"
    pam, libc = libs
    secret = password.encode("utf-8", "surrogateescape")

    @CONV_FUNC  # type: ignore[untyped-decorator]
    def conversation(n: int, messages: Any, responses: Any, _data: Any) -> int:
        # PAM frees the response array and strings itself: allocate with libc.
        array = libc.calloc(n, ctypes.sizeof(PamResponse))
        if not array:
            return PAM_BUF_ERR
        answers = ctypes.cast(array, ctypes.POINTER(PamResponse))
        for i in range(n):
            style = messages[i].contents.msg_style
            if style in (PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON):
                answers[i].resp = libc.strdup(secret)
            answers[i].resp_retcode = 0
        responses[0] = answers
        return PAM_SUCCESS

    @DELAY_FUNC  # type: ignore[untyped-decorator]
    def no_delay(_status: int, _usec: int, _data: Any) -> None:
        return None  # auth_failure_delay is ours to apply

    handle = ctypes.c_void_p()
    conv = PamConv(conversation, None)
    code = pam.pam_start(service.encode(), user.encode("utf-8", "surrogateescape"),
                         ctypes.byref(conv), ctypes.byref(handle))
    if code != PAM_SUCCESS:
        return code, f"pam_start() failed: {code}"
    try:
        pam.pam_set_item(handle, PAM_FAIL_DELAY, ctypes.cast(no_delay, ctypes.c_void_p))
        if rhost:
            pam.pam_set_item(handle, PAM_RHOST, ctypes.cast(ctypes.c_char_p(rhost.encode()),
                                                            ctypes.c_void_p))
        code = pam.pam_authenticate(handle, 0)
        if code == PAM_SUCCESS:
            code = pam.pam_acct_mgmt(handle, 0)
        text = (pam.pam_strerror(handle, code) or b"").decode("utf-8", "replace")
        return code, text
    finally:
        pam.pam_end(handle, code)
