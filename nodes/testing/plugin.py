"""The corral pytest plugin: fixtures that run a user's handlers on a simulated cluster.

pytest loads this module in every session of any project that has corral installed (the
`pytest11` entry point), so it imports nothing of corral at module level and starts nothing
when loaded or configured: the fixtures import the cluster when a test first asks for one.
(Importing it still runs `nodes/__init__.py`, which imports every node, about 0.6 s, until
that package's names are loaded lazily.) How to use it: docs/TESTING.md.

Configuration, from weakest to strongest: the plugin's defaults (2 workers, the cluster's
other defaults, seed 0), `--corral-seed` (the seed only), the `corral_handlers` fixture (the
handlers only), then `@pytest.mark.corral(...)` markers, a module's or class's first and the
test's own last, each key of a closer marker winning and `handlers` merged name by name.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from actors.clock import ManualClock
    from nodes.client import Client
    from nodes.cluster import Cluster
    from nodes.testing.faults import Faults
    from nodes.testing.virtual_time import VirtualTime

MARKER = "corral"
DEFAULT_SEED = 0
DEFAULT_WORKERS = 2  # enough for a job lost with one worker to finish on another
RANDOM_SEED = "random"
MARKER_HELP = (
    "corral(handlers={...}, workers=2, concurrency=4, queues=('default',), settings=None, "
    "seed=None, **cluster_options): configure the simulated cluster of corral_cluster "
    "(nodes.cluster.Cluster's keyword arguments; handlers merge with the corral_handlers "
    "fixture's, the marker's winning)"
)


@dataclass(frozen=True)
class _Run:
    """What a failure report says about the test's cluster."""

    seed: int
    clock: ManualClock
    started_at: float


_RUN = pytest.StashKey[_Run]()
_SESSION_SEED = pytest.StashKey[int]()


# -- hooks ------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("corral", "corral simulated clusters")
    group.addoption(
        "--corral-seed",
        type=_seed_option,
        default=None,
        metavar="N|random",
        help=(
            "seed of each corral_cluster whose test's marker sets none (default 0); "
            "'random' draws one for the session and prints it in the header"
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    option = config.getoption("corral_seed", None)
    if option == RANDOM_SEED:  # drawn here, once: argparse may call the option's type twice
        option = random.SystemRandom().randrange(2**32)
    if option is not None:
        config.stash[_SESSION_SEED] = option


def pytest_report_header(config: pytest.Config) -> str | None:
    seed = config.stash.get(_SESSION_SEED, None)
    return None if seed is None else f"corral: --corral-seed={seed}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test that ran a cluster gets a `corral` section: its seed, how far virtual
    time had gone, and the command that replays it."""
    report = yield
    run = item.stash.get(_RUN, None)
    if run is not None and report.failed:
        text = (
            f"seed={run.seed}; virtual time {run.clock.now() - run.started_at:.3f} s after "
            f"the cluster started\nreplay: pytest '{item.nodeid}' --corral-seed={run.seed}"
        )
        longrepr = report.longrepr
        if hasattr(longrepr, "addsection"):  # shown with the traceback, whatever --show-capture
            longrepr.addsection(MARKER, text)
        else:
            report.sections.append((MARKER, text))
    return report


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def corral_seed(request: pytest.FixtureRequest) -> int:
    """The seed of the test's cluster: the marker's `seed`, else `--corral-seed`, else 0."""
    options = _marker_options(request.node)
    if options.get("seed") is not None:
        return int(options["seed"])
    return request.config.stash.get(_SESSION_SEED, DEFAULT_SEED)


@pytest.fixture
def corral_clock() -> ManualClock:
    """The virtual clock every node of `corral_cluster` reads; override it for another start
    time (it must be a ManualClock)."""
    from actors.clock import ManualClock

    return ManualClock()


@pytest.fixture
def corral_handlers() -> dict[str, Callable[..., Any]]:
    """Job type -> handler for every worker of `corral_cluster`. Override this fixture in a
    conftest.py or test module to test your own handlers."""
    return {}


@pytest.fixture
def corral_cluster(
    request: pytest.FixtureRequest,
    corral_clock: ManualClock,
    corral_handlers: dict[str, Callable[..., Any]],
    corral_seed: int,
) -> Iterator[Cluster]:
    """A started simulated Cluster (a coordinator and workers over the in-process network, on
    `corral_clock`), stopped at teardown whatever the test's outcome."""
    from actors.clock import ManualClock
    from nodes.cluster import Cluster

    if not isinstance(corral_clock, ManualClock):
        raise TypeError(f"corral_clock must be a ManualClock, not {type(corral_clock).__name__}")
    options = _marker_options(request.node)
    options.pop("seed", None)
    for reserved in ("clock", "pump"):
        if reserved in options:
            raise TypeError(f"@pytest.mark.corral cannot set {reserved!r}: the plugin owns it")
    handlers = {**corral_handlers, **options.pop("handlers", {})}
    options.setdefault("workers", DEFAULT_WORKERS)
    request.node.stash[_RUN] = _Run(corral_seed, corral_clock, corral_clock.now())
    request.node.user_properties.append(("corral_seed", corral_seed))  # into JUnit XML
    cluster = Cluster(clock=corral_clock, seed=corral_seed, handlers=handlers, **options)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def corral_client(corral_cluster: Cluster) -> Client:
    """A Client of `corral_cluster`. Its waits (`JobHandle.result(timeout=)`, `get(wait=)`)
    move virtual time, so `timeout=60` means 60 simulated seconds."""
    return corral_cluster.client()


@pytest.fixture
def corral_time(corral_cluster: Cluster) -> VirtualTime:
    """Moves and reads `corral_cluster`'s virtual time (nodes/testing/virtual_time.py)."""
    from nodes.testing.virtual_time import VirtualTime

    return VirtualTime(corral_cluster)


@pytest.fixture
def corral_faults(corral_cluster: Cluster, corral_seed: int) -> Faults:
    """Kills, stops and adds workers, restarts the coordinator, partitions nodes
    (nodes/testing/faults.py)."""
    from nodes.testing.faults import Faults

    return Faults(corral_cluster, corral_seed)


# -- helpers ----------------------------------------------------------------------------------


def _seed_option(text: str) -> int | str:
    if text == RANDOM_SEED:
        return text
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an integer or 'random', not {text!r}") from None


def _marker_options(node: pytest.Item | pytest.Collector) -> dict[str, Any]:
    """The corral markers' keyword arguments: farthest (module) first, so the closest wins
    key by key; `handlers` merged name by name."""
    options: dict[str, Any] = {}
    handlers: dict[str, Callable[..., Any]] = {}
    for marker in reversed(list(node.iter_markers(MARKER))):
        if marker.args:
            raise TypeError(f"@pytest.mark.corral takes keyword arguments only: {marker.args!r}")
        kwargs = dict(marker.kwargs)
        handlers.update(kwargs.pop("handlers", None) or {})
        options.update(kwargs)
    if handlers:
        options["handlers"] = handlers
    return options
