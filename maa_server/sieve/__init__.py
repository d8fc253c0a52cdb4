"""Sieve (RFC 5228) for delivery-time filtering, compatible with Pigeonhole.

`compile_script(text)` gives a validated `Script` or raises `SieveError`
with Pigeonhole-style "line N: error: ..." messages; `run(script, message,
envelope)` gives the actions to carry out. The language modules do no I/O;
`scripts` (the script store), `duplicates` and `sendmail` are the blocking
or subprocess helpers the delivery and ManageSieve layers use."""

from maa_server.sieve.errors import SieveError
from maa_server.sieve.interpreter import Action, ExecutionResult, run
from maa_server.sieve.validator import Script, compile_script

__all__ = ["Action", "ExecutionResult", "Script", "SieveError", "compile_script", "run"]
