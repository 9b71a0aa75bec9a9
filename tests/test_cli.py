"""The ``atlas`` command, run as a real subprocess from the virtualenv."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from requester.protocol import BTT_LOCAL, PayerChannel, PayerKey, SendVoucher
from tests.conftest import NOW, make_terms

ATLAS = str(Path(sys.executable).with_name("atlas"))


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATLAS, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_help_lists_subcommands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "decode" in result.stdout


def test_decode_voucher_from_stdin(payer_key: PayerKey, payee_key: PayerKey) -> None:
    channel = PayerChannel(make_terms(payer_key, payee_key), payer_key)
    send = channel.pay(12345, NOW)[1]
    assert isinstance(send, SendVoucher)
    result = run("decode", "-", stdin=send.voucher.to_header())
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["type"] == "voucher"
    assert view["payer"] == str(payer_key.address)
    assert view["amount_base_units"] == "12345"
    assert view["asset"] == BTT_LOCAL.uri


def test_decode_refuses_garbage_with_problem_json() -> None:
    result = run("decode", "QVRWAQ")
    assert result.returncode == 2
    problem = json.loads(result.stderr)
    assert problem["status"] == 400
    assert "voucher" in problem["detail"] or "not a manifest" in problem["detail"]
