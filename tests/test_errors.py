"""The error tree (requester/errors.py): every error class of the programs is under
AtlasError in its branch, with a status and code pinned here, and every problem body has
one shape. A new error class, or a renamed code, must be added to the table before it ships.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil

import pytest

from proxy.failures import classify
from requester.chunk_client import ContentFailed
from requester.client import EdgeUnavailable, FetchRefused, TorrentListing
from requester.download_failures import ContentFailedAtOrigin
from requester.errors import (
    ORIGIN_TITLES,
    PROBLEM_JSON,
    AtlasError,
    Problem,
    Refusal,
    SdkError,
    ServiceRefusal,
)
from requester.ledger_client import LedgerError
from requester.protocol import MalformedMessage, PaymentRequired, ProtocolError

PACKAGES = ("requester", "cdn_edge", "proxy", "launcher")
OUTSIDE_THE_TREE = {
    "cdn_edge.tunnel.relay._Ended": "ends one relay loop from inside; never leaves the module",
    "cdn_edge.content.sibling_fetch._NotUsable": "ends one sibling's trial inside the module",
    "launcher.processes.NotReady": "the process runner's own (tests and benchmarks catch it)",
    "cdn_edge.ledger.tron_node.chain.Refused": "java-tron's own words, answered as it does",
    "cdn_edge.ledger.tron_node.execution.Invalid": "java-tron's own words, answered as it does",
    "cdn_edge.ledger.tron_node.genesis.DeployerFailed": "the offline node failing its own start",
    "cdn_edge.ledger.tron_node.protobuf.BadMessage": "java-tron's own words, answered as it does",
    "cdn_edge.ledger.tron_node.transactions.BadSignature": "java-tron's SIGERROR",
    "cdn_edge.ledger.tron_node.transactions.Unsupported": "java-tron's vocabulary (a BadMessage)",
    "requester.tron.artifacts.StaleArtifact": "a build defect: JSON not from its .sol",
    "requester.settings_spec.InvalidSetting": "a setting's text, turned into ConfigError",
}
"""Exception classes that are not Atlas errors, and why."""

PINNED: dict[str, tuple[int, str]] = {
    # the roots
    "requester.errors.AtlasError": (500, "atlas_error"),
    "requester.errors.Refusal": (400, "refusal"),
    "requester.errors.ServiceRefusal": (400, "service_refusal"),
    "requester.errors.SdkError": (500, "sdk_error"),
    # the wire protocol (tests/protocol/test_errors.py checks its hierarchy)
    "requester.protocol.errors.ProtocolError": (400, "protocol_error"),
    "requester.protocol.errors.MalformedMessage": (400, "malformed_message"),
    "requester.protocol.errors.InvalidSignature": (400, "invalid_signature"),
    "requester.protocol.errors.WrongBinding": (400, "wrong_binding"),
    "requester.protocol.errors.AdvertExpired": (400, "advert_expired"),
    "requester.protocol.errors.PaymentRequired": (402, "payment_required"),
    "requester.protocol.errors.Underpaid": (402, "underpaid"),
    "requester.protocol.errors.DepositExceeded": (402, "deposit_exceeded"),
    "requester.protocol.errors.ChannelExpired": (402, "channel_expired"),
    "requester.protocol.errors.QuoteExpired": (402, "quote_expired"),
    "requester.protocol.errors.CreditProofRequired": (402, "credit_proof_required"),
    "requester.protocol.errors.CreditNotPayer": (402, "credit_not_payer"),
    "requester.protocol.errors.CreditSpendExpired": (402, "credit_spend_expired"),
    "requester.protocol.errors.Conflict": (409, "conflict"),
    "requester.protocol.errors.StaleVoucher": (409, "stale_voucher"),
    "requester.protocol.errors.ChannelClosed": (409, "channel_closed"),
    "requester.protocol.errors.CreditSpendReplayed": (409, "credit_spend_replayed"),
    "requester.channel_manager.SpendLimitReached": (402, "spend_limit"),
    "requester.channel_manager.InsufficientFunds": (402, "spend_limit"),
    # the edge's and the ledger's own refusals
    "cdn_edge.content.origin_errors.OriginUnreachable": (502, "origin_unreachable"),
    "cdn_edge.content.origin_errors.OriginTlsInvalid": (502, "origin_tls_invalid"),
    "cdn_edge.content.origin_errors.OriginTruncated": (502, "origin_truncated"),
    "cdn_edge.content.origin_errors.OriginReset": (502, "origin_reset"),
    "cdn_edge.content.origin_errors.OriginTimeout": (504, "origin_timeout"),
    "cdn_edge.content.origin_errors.OriginTooLarge": (502, "origin_too_large"),
    "cdn_edge.content.origin_errors.TooManyRedirects": (502, "too_many_redirects"),
    "cdn_edge.content.origin_errors.BadOriginEncoding": (502, "bad_content_encoding"),
    "cdn_edge.address_policy.BadUrl": (400, "bad_url"),
    "cdn_edge.address_policy.BlockedAddress": (403, "blocked_address"),
    "cdn_edge.content.fetch_join.FetchFailed": (502, "fetch_failed"),
    "cdn_edge.content.cache_lookup.NotCached": (504, "not_cached"),
    "cdn_edge.routes_content.TorrentsOff": (404, "not_found"),
    "cdn_edge.torrent.errors.TorrentFileNotFound": (404, "torrent_file_not_found"),
    "cdn_edge.torrent.errors.TorrentTooLarge": (413, "torrent_too_large"),
    "cdn_edge.torrent.errors.TorrentUnsupported": (422, "torrent_unsupported"),
    "cdn_edge.torrent.errors.TorrentUnavailable": (503, "torrent_unavailable"),
    "cdn_edge.torrent.errors.TorrentTimeout": (504, "torrent_timeout"),
    "cdn_edge.torrent.errors.TorrentStorageFull": (507, "insufficient_storage"),
    "cdn_edge.tunnel.connect_request.TunnelInUse": (409, "tunnel_in_use"),
    "cdn_edge.tunnel.connect_request.TunnelClosed": (409, "tunnel_closed"),
    "cdn_edge.tunnel.connect_request.UnknownTunnel": (404, "unknown_tunnel"),
    "cdn_edge.tunnel.connect_request.TooManyTunnels": (503, "too_many_tunnels"),
    "cdn_edge.tunnel.connect_request.TargetUnreachable": (502, "target_unreachable"),
    "cdn_edge.tunnel.server.InternalError": (500, "internal_error"),
    "cdn_edge.payments.LedgerUnavailable": (503, "ledger_unavailable"),
    "cdn_edge.ledger.refusals.LedgerRefusal": (400, "ledger_refusal"),
    "cdn_edge.ledger.faucet.FaucetLimited": (429, "faucet_limit"),
    "cdn_edge.content.replication.SoldOnly": (503, "chunk_not_ready"),
    # the SDK's failures (and atlas up's)
    "requester.client.TorrentListing": (300, "torrent_listing"),
    "requester.client.FetchRefused": (400, "refused"),
    "requester.client.EdgeUnavailable": (502, "edge_unreachable"),
    "requester.discovery.NoEdgeFound": (503, "no_edge_found"),
    "requester.download_failures.NoProvidersLeft": (504, "no_providers"),
    "requester.download_failures.ContentFailedAtOrigin": (502, "content_failed"),
    "requester.download_failures.PaymentNeeded": (402, "payment_needed"),
    "requester.ledger_client.LedgerError": (502, "ledger_unavailable"),
    "requester.tron.deploy.DeployError": (502, "deploy_failed"),
    "requester.chunk_faults.ProviderFault": (502, "provider_fault"),
    "requester.chunk_faults.ContentFailed": (502, "provider_fault"),
    "requester.chunk_faults.PaymentRefused": (502, "provider_fault"),
    "requester.chunk_faults.ChunkUnavailable": (503, "chunk_unavailable"),
    "requester.chunk_faults.ProviderUnreachable": (502, "provider_unreachable"),
    "requester.channel_manager.NewChannelRefused": (402, "new_channel_refused"),
    "requester.payer_store.IssuedElsewhere": (409, "issued_elsewhere"),
    "requester.keystore.KeystoreError": (500, "keystore_unusable"),
    "requester.settings.ConfigError": (500, "config_invalid"),
    "launcher.local_network.NetworkSetupError": (500, "network_setup_failed"),
    "launcher.local_network.PortInUse": (409, "port_in_use"),
    "launcher.supervisor.ChildFailed": (500, "child_failed"),
}
"""Class-level status and code of every Atlas error. Instances that relay a peer's answer
(LedgerError, ChunkUnavailable, ContentFailed, FetchRefused, LedgerRefusal) set their own."""

SHARED_CODES = {"ledger_unavailable": {"cdn_edge.payments.LedgerUnavailable",
                                       "requester.ledger_client.LedgerError"}}  # fmt: skip
"""Codes two classes answer with, on the wire since before the tree: an edge's 503 while
its ledger cannot be asked, and the proxy's 502 when the ledger refused or was unreachable."""


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in the programs' packages (their CLIs included)."""
    found: dict[str, type[BaseException]] = {}
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue  # runs its program on import
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                if (inspect.isclass(value) and issubclass(value, BaseException)
                        and value.__module__ == module.__name__):  # fmt: skip
                    found[_name(value)] = value
    return found


CLASSES = _exception_classes()
ATLAS = {name: cls for name, cls in CLASSES.items() if issubclass(cls, AtlasError)}


def test_every_error_class_is_an_atlas_error() -> None:
    outside = {name for name, cls in CLASSES.items() if not issubclass(cls, AtlasError)}
    assert outside == set(OUTSIDE_THE_TREE)


def test_every_atlas_error_has_its_pinned_status_and_code() -> None:
    assert {name: (cls.status, cls.code) for name, cls in ATLAS.items()} == PINNED


def test_codes_are_unique() -> None:
    """Each code names one class (the classes that only relay a peer's code declare none)."""
    by_code: dict[str, set[str]] = {}
    for name, cls in ATLAS.items():
        if "code" in vars(cls):
            by_code.setdefault(cls.code, set()).add(name)
    shared = {code: names for code, names in by_code.items() if len(names) > 1}
    assert shared == SHARED_CODES


def _branch(name: str) -> type[AtlasError]:
    if name.startswith("requester.protocol.") or name.endswith(
        (".SpendLimitReached", ".InsufficientFunds")
    ):
        return ProtocolError  # SpendLimitReached: the payer's own limit, a PaymentRequired
    if name.startswith("cdn_edge."):
        return ServiceRefusal
    return SdkError


@pytest.mark.parametrize("name", sorted(ATLAS))
def test_each_error_is_in_its_branch(name: str) -> None:
    cls = ATLAS[name]
    if cls in (AtlasError, Refusal, ServiceRefusal, SdkError):
        return
    assert issubclass(cls, _branch(name)), cls.__mro__
    assert issubclass(cls, Refusal) != issubclass(cls, SdkError)


def test_a_refusal_is_never_an_sdk_failure() -> None:
    assert not issubclass(ServiceRefusal, ProtocolError)
    assert not issubclass(ProtocolError, ServiceRefusal)
    assert issubclass(ProtocolError, Refusal) and issubclass(ServiceRefusal, Refusal)
    assert not issubclass(SdkError, Refusal)


def _simple(cls: type[AtlasError]) -> bool:
    params = list(inspect.signature(cls.__init__).parameters)
    return params == ["self", "message"]


@pytest.mark.parametrize("name", sorted(n for n, c in ATLAS.items() if _simple(c)))
def test_problem_shape(name: str) -> None:
    cls = ATLAS[name]
    error = cls("something precise went wrong")
    assert (error.message, str(error)) == ("something precise went wrong",) * 2
    assert error.problem() == {
        "type": f"https://atlas.invalid/problems/{cls.code}",
        "title": cls.title if cls.title is not None else cls.code.replace("_", " "),
        "status": cls.status,
        "detail": "something precise went wrong",
    }


def test_problem_bodies_keep_their_order_and_type() -> None:
    body = Problem(402, "spend_limit", "d", "Spending limit reached").json()
    assert list(json.loads(body)) == ["type", "title", "status", "detail"]
    assert json.loads(Problem(400, "bad_url", "d").json())["title"] == "bad url"
    assert PROBLEM_JSON == "application/problem+json"


def test_a_ledger_error_keeps_the_ledgers_answer_and_answers_as_the_proxy_did() -> None:
    gone = LedgerError(404, "not_found", "no channel")
    assert (gone.status, gone.code, gone.detail) == (404, "not_found", "no channel")
    assert gone.answer() == Problem(502, "ledger_unavailable",
                                    "ledger refused (404 not_found): no channel",
                                    "The payment ledger refused")  # fmt: skip
    broke = LedgerError(402, "insufficient_funds", "balance is 0")
    assert broke.answer() == Problem(402, "insufficient_funds", "balance is 0", "Out of funds")


def test_an_edges_refusal_keeps_its_code_and_detail() -> None:
    doc = {"type": "https://atlas.invalid/problems/blocked_address", "detail": "private"}
    refused = FetchRefused(403, doc)
    assert (refused.status, refused.code, refused.message) == (403, "blocked_address", "private")
    assert refused.title == "This address is blocked" and refused.edge_problem == doc
    assert str(refused) == "the edge refused: private"
    bare = FetchRefused(404, {})
    assert (bare.code, bare.message, bare.title) == ("refused", "404: {}",
                                                     "The edge refused the request")  # fmt: skip


def test_an_origins_fault_is_answered_as_the_edge_said_it() -> None:
    doc = {"type": "https://atlas.invalid/problems/origin_timeout", "status": 504,
           "detail": "no answer in 30 s"}  # fmt: skip
    failed = EdgeUnavailable("no edge could fetch it", [("http://e", doc)])
    assert failed.answer() == Problem(504, "origin_timeout",
                                      "no answer in 30 s; reported by the Atlas edge http://e",
                                      ORIGIN_TITLES["origin_timeout"])  # fmt: skip
    assert str(failed) == "no edge could fetch it"
    plain = EdgeUnavailable("no edge could fetch it")
    assert (plain.status, plain.code, plain.message) == (502, "edge_unreachable", str(plain))


def test_content_failed_at_origin_carries_the_edges_problem() -> None:
    body = json.dumps({"type": "https://atlas.invalid/problems/origin_truncated",
                       "detail": "cut at 10 bytes"}).encode()  # fmt: skip
    failed = ContentFailedAtOrigin(ContentFailed("http://e", 502, body))
    assert failed.answer() == Problem(502, "origin_truncated",
                                      "cut at 10 bytes; reported by the Atlas edge http://e",
                                      ORIGIN_TITLES["origin_truncated"])  # fmt: skip
    odd = ContentFailedAtOrigin(ContentFailed("http://e", 418, b"teapot"))
    assert (odd.status, odd.code) == (502, "content_failed")
    assert odd.title == "The site's response failed at the Atlas edge"


def test_a_torrent_listing_names_its_files() -> None:
    listing = TorrentListing([{"path": f"f{i}", "size": 1} for i in range(60)])
    assert listing.answer().status == 300 and listing.message.count(", ") == 49
    assert str(listing) == "the torrent holds 60 files: name one"


def test_the_proxy_reads_every_failure_from_the_tree() -> None:
    assert classify(MalformedMessage("bad chunk")).status == 502  # a provider's, not ours
    assert classify(PaymentRequired("pay")).title == "Out of funds"
    assert classify(RuntimeError("boom")).code == "proxy_error"
    assert classify(SdkError("internal")).code == "proxy_error"  # no title: not for people
