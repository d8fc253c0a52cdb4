"""Headers Dovecot's LMTP prepends (spec 8.4, observed on Dovecot 2.3.19)."""

from __future__ import annotations

from datetime import UTC, datetime

from maa_server.delivery import (
    TraceInfo,
    lmtp_headers,
    message_id,
    received_header,
    to_lf,
)

NOW = datetime(2026, 11, 26, 17, 2, 25, tzinfo=UTC)


def test_single_recipient_headers_as_observed() -> None:
    trace = TraceInfo(lhlo_name="mx.example.org", hostname="vm", transaction_id="yBMNFyFmCGsxOQAAg+zDdQ")
    out = lmtp_headers("bounce@example.org", "Alice", trace, "Alice", NOW).decode()
    date = NOW.astimezone().strftime("%a, %d %b %Y %H:%M:%S %z")
    assert out == (
        "Return-Path: <bounce@example.org>\n"
        "Delivered-To: Alice\n"
        "Received: from mx.example.org\n"
        "\tby vm with LMTP\n"
        "\tid yBMNFyFmCGsxOQAAg+zDdQ\n"
        "\t(envelope-from <bounce@example.org>)\n"
        f"\tfor <Alice>; {date}\n"
    )


def test_two_recipients_no_delivered_to_no_for() -> None:
    trace = TraceInfo(lhlo_name="client.example.org", client_ip="127.0.0.1", hostname="vm",
                      transaction_id="wHpDNghmCGsxOQAAg+zDdQ")
    out = lmtp_headers("sender@example.org", None, trace, None, NOW).decode()
    assert out.startswith("Return-Path: <sender@example.org>\nReceived: from client.example.org ([127.0.0.1])\n")
    assert "Delivered-To" not in out
    assert "\t(envelope-from <sender@example.org>); " in out
    assert "for <" not in out


def test_null_sender_and_tls_and_bad_lhlo() -> None:
    trace = TraceInfo(lhlo_name="bad name!", hostname="vm", transaction_id="id",
                      tls_description="TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
                      protocol="LMTPS")
    out = received_header(trace, "", "alice", NOW).decode()
    assert out.startswith("Received: from unknown\n\t(using TLSv1.3 with cipher")
    assert "by vm with LMTPS" in out
    assert "(envelope-from <>)" in out


def test_message_id_and_line_ends() -> None:
    assert message_id(b"Subject: x\nMessage-ID: <m1@x>\n\nbody") == "<m1@x>"
    assert message_id(b"Subject: x\n\nMessage-ID: <not@header>\n") == "unspecified"
    assert message_id(b"Message-Id:\n <folded@x>\n\n") == "<folded@x>"
    assert to_lf(b"a\r\nb\rc\r\n") == b"a\nb\rc\n"
