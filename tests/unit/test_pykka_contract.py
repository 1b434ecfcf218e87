"""The private pykka members corral builds on (actors/base.py, actors/inbox.py), held to the
series pyproject.toml pins.

pykka's actor loop has no public extension points for a custom inbox, so `CorralActor`
overrides `_create_actor_inbox`, `_actor_loop_setup`, `_actor_loop_running`,
`_actor_loop_teardown` and calls `_handle_receive`, `_handle_failure`, `Envelope`'s two slots
and `messages._ActorStop`. A pykka release that renames, moves or reorders any of them must
fail here, by name, rather than as a hung actor somewhere in the suite.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actors.base import Activity, CorralActor, Mailbox
from actors.inbox import InlineInbox

WAIT_S = 5.0
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
UPGRADE_HINT = (
    "corral overrides private pykka members in actors/base.py and actors/inbox.py: read the "
    "new pykka's _actor.py, _ref.py and _envelope.py, adapt the overrides, then move the pin "
    "in pyproject.toml"
)


def member(path: str) -> Any:
    """`module:Class.attribute` resolved, or a failure that names what moved."""
    module_name, _, dotted = path.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError:
        pytest.fail(f"{module_name} is gone: {UPGRADE_HINT}")
    for name in dotted.split("."):
        if not hasattr(found, name):
            pytest.fail(f"{path} is gone: {UPGRADE_HINT}")
        found = getattr(found, name)
    return found


def pinned_series() -> tuple[int, int]:
    """The (major, minor) that pyproject.toml's `pykka>=X.Y,<X.Y+1` pins."""
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (pin,) = [d for d in dependencies if d.startswith("pykka")]
    match = re.fullmatch(r"pykka>=(\d+)\.(\d+),<(\d+)\.(\d+)", pin)
    assert match, f"pykka must be pinned to one minor series (>=X.Y,<X.Y+1), not {pin!r}"
    low_major, low_minor, high_major, high_minor = map(int, match.groups())
    assert (high_major, high_minor) == (low_major, low_minor + 1), (
        f"{pin!r} spans more than the one minor series the overrides were read against"
    )
    return low_major, low_minor


def test_the_installed_pykka_is_in_the_pinned_minor_series():
    installed = importlib.metadata.version("pykka")
    series = tuple(int(part) for part in installed.split(".")[:2])
    assert series == pinned_series(), (
        f"pykka {installed} is installed, outside the series pyproject.toml pins: "
        f"{UPGRADE_HINT}"
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("pykka:ThreadingActor._create_actor_inbox", []),
        ("pykka:Actor._actor_loop", ["self"]),
        ("pykka:Actor._actor_loop_setup", ["self"]),
        ("pykka:Actor._actor_loop_running", ["self"]),
        ("pykka:Actor._actor_loop_teardown", ["self"]),
        ("pykka:Actor._handle_receive", ["self", "message"]),
        ("pykka:Actor._handle_failure", ["self", "exception_type", "exception_value", "traceback"]),
        ("pykka:Actor.on_stop", ["self"]),
        ("pykka:ActorRegistry.unregister", ["actor_ref"]),
        ("pykka:ActorRegistry.stop_all", ["block", "timeout"]),
        ("pykka:ThreadingFuture.set_exception", ["self", "exc_info"]),
        ("pykka._envelope:Envelope.__init__", ["self", "message", "reply_to"]),
    ],
)
def test_each_private_pykka_member_corral_overrides_or_calls_keeps_its_signature(path, expected):
    found = list(inspect.signature(member(path)).parameters)
    assert found == expected, f"{path} now takes {found}, not {expected}: {UPGRADE_HINT}"


def test_pykkas_envelope_and_inbox_protocol_are_what_the_inline_inbox_mimics():
    slots = tuple(member("pykka._envelope:Envelope.__slots__"))
    assert slots == ("message", "reply_to"), f"Envelope has {slots}: {UPGRADE_HINT}"
    for name in ("put", "get", "empty"):
        member(f"pykka._actor:ActorInbox.{name}")
        assert callable(getattr(InlineInbox, name))
    assert inspect.isclass(member("pykka.messages:_ActorStop"))


def test_the_actor_loop_calls_the_hooks_in_the_order_corral_assumes():
    """A tiny real actor records which hook pykka calls, on which thread, in which order."""
    calls: list[tuple[str, str]] = []

    class Probe(CorralActor):
        def handlers(self) -> dict[type, Callable[[Any], None]]:
            return {str: lambda message: calls.append(("handle " + message, here()))}

        def _actor_loop_setup(self) -> None:
            calls.append(("setup", here()))
            super()._actor_loop_setup()

        def _actor_loop_running(self) -> None:
            calls.append(("running", here()))
            super()._actor_loop_running()

        def _actor_loop_teardown(self) -> None:
            calls.append(("teardown", here()))
            super()._actor_loop_teardown()

        def _handle_receive(self, message: Any) -> Any:
            calls.append(("receive " + type(message).__name__, here()))
            return super()._handle_receive(message)

    def here() -> str:
        return "test" if threading.current_thread() is test_thread else "actor"

    test_thread = threading.current_thread()
    activity = Activity()
    ref = Probe.start(activity)
    assert isinstance(ref.actor_inbox, InlineInbox), f"_create_actor_inbox: {UPGRADE_HINT}"
    mailbox = Mailbox(ref, activity)
    assert activity.wait_idle(WAIT_S)  # nothing told yet; on_start has run by the first ask
    ref.ask("asked", timeout=WAIT_S)
    mailbox.tell("told")  # the actor is idle: handled here, on the test's thread
    assert ref.stop(block=True, timeout=WAIT_S) is True
    assert calls == [
        ("setup", "actor"),
        ("running", "actor"),
        ("receive str", "actor"),
        ("handle asked", "actor"),
        ("receive str", "test"),
        ("handle told", "test"),
        ("receive _ActorStop", "actor"),
        ("teardown", "actor"),
    ], f"pykka's actor loop no longer drives the hooks as corral assumes: {UPGRADE_HINT}"
    assert not ref.is_alive(), f"ActorRef.is_alive no longer reads actor_stopped: {UPGRADE_HINT}"
