"""Config files: what loads, what is refused (with file, node and key named), what resolves."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from actors.limits import LimitRule
from nodes.config import load_config
from nodes.config.fields import ConfigError
from nodes.config.kinds import CoordinatorConfig, ProducerConfig, WorkerConfig, connect_address
from nodes.coordinator import Coordinator
from nodes.demo import square
from nodes.factory import build_node, load_node
from nodes.producer import Producer, expand, percentile
from nodes.worker_node import WorkerNode
from transport.jobspec import Rate

REPO = Path(__file__).resolve().parents[2]

VALID = """
nodes:
  coordinator:
    kind: coordinator
    bind: tcp://127.0.0.1:5555
    store: sqlite:///data/corral.db
    heartbeat_interval: 2
    heartbeat_timeout: 10
    visibility_timeout: 60
    max_message_size: 262144
    security:
      secret_key_file: keys/coordinator.key_secret
      authorized:
        - {public_key_file: keys/worker.key, roles: [worker]}
        - {public_key_file: /etc/corral/client.key, roles: [client, admin]}
  worker-eu:
    kind: worker
    connect: tcp://127.0.0.1:5555
    queues: [critical, default]
    concurrency: 3
    labels: {region: [eu]}
    handlers: {square: "nodes.demo:square"}
    shutdown_grace: 2.5
  load:
    kind: producer
    type: square
    count: 10
    args: ["{i}"]
    expect: "nodes.demo:square"
"""


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building imports handlers with the config's directory on sys.path; undo that."""
    monkeypatch.setattr(sys, "path", list(sys.path))


def write(tmp_path: Path, text: str, name: str = "cluster.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def refusal(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def worker_yaml(**extra: str) -> str:
    lines = "\n".join(f"    {k}: {v}" for k, v in extra.items())
    return f"""
nodes:
  worker-eu:
    kind: worker
    handlers: {{square: "nodes.demo:square"}}
{lines}
"""


# -- what loads -------------------------------------------------------------------------------


def test_a_valid_file_loads_every_node_in_file_order_with_typed_values(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))

    assert list(config.nodes) == ["coordinator", "worker-eu", "load"]
    coordinator = config.node("coordinator")
    assert isinstance(coordinator, CoordinatorConfig)
    assert coordinator.heartbeat_timeout == 10.0
    assert coordinator.security is not None
    assert coordinator.security.authorized[1].roles == ("client", "admin")
    worker = config.node("worker-eu")
    assert isinstance(worker, WorkerConfig)
    assert worker.queues == ("critical", "default")
    assert worker.labels == {"region": ("eu",)}
    assert isinstance(config.node("load"), ProducerConfig)


def test_unset_keys_take_the_named_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, worker_yaml()))

    worker = config.node("worker-eu")
    assert isinstance(worker, WorkerConfig)
    assert (worker.connect, worker.queues, worker.concurrency) == (
        "tcp://127.0.0.1:5555",
        ("default",),
        10,
    )
    assert worker.shutdown_grace == 25.0


def test_build_returns_unstarted_nodes_configured_from_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))

    # security=None: this file's key files do not exist (test_security.py builds with keys)
    coordinator = build_node(config.node("coordinator"), store="memory", security=None)
    worker = build_node(config.node("worker-eu"))
    producer = build_node(config.node("load"))

    assert isinstance(coordinator, Coordinator)
    assert coordinator.settings.heartbeat_interval == 2.0
    assert coordinator.limits.max_job_size == 262144  # capped by max_message_size
    assert coordinator.ctx is None  # not started
    assert isinstance(worker, WorkerNode)
    assert worker.handlers == {"square": square}
    assert worker.settings.labels == {"region": ["eu"]}
    assert worker.settings.concurrency == 3
    assert isinstance(producer, Producer)
    assert producer.expect is square


def test_overrides_passed_to_build_replace_the_file_values(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))

    coordinator = build_node(
        config.node("coordinator"), bind="tcp://127.0.0.1:0", store="memory", security=None
    )

    assert coordinator.bind == "tcp://127.0.0.1:0"


def test_load_node_builds_a_node_of_a_file_by_its_name(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)

    worker = load_node(str(path), "worker-eu", concurrency=5)

    assert isinstance(worker, WorkerNode)
    assert worker.settings.concurrency == 5
    assert worker.settings.labels == {"region": ["eu"]}


def test_coordinator_from_config_builds_the_coordinator_node_of_a_file() -> None:
    # The embedding API of the README: Coordinator.from_config(path, node=...)
    coordinator = Coordinator.from_config(
        str(REPO / "configs" / "demo.yaml"), node="coordinator", bind="tcp://127.0.0.1:0"
    )

    assert isinstance(coordinator, Coordinator)
    assert coordinator.bind == "tcp://127.0.0.1:0"


def test_coordinator_from_config_of_a_worker_node_names_the_file_and_node(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)

    with pytest.raises(ConfigError, match=r"node 'worker-eu'.*not a coordinator"):
        Coordinator.from_config(str(path), node="worker-eu")


def test_the_shipped_configs_load_and_build() -> None:
    for name in ("demo.yaml", "single.yaml", "gateway.yaml"):
        config = load_config(REPO / "configs" / name)
        for node in config.nodes.values():
            build_node(node)


def test_a_gateway_reads_its_token_files_and_refuses_short_repeated_or_unknown_ones(
    tmp_path: Path,
) -> None:
    token = "t" * 20
    for name, text in (("a.token", token), ("b.token", token), ("short.token", "abc")):
        (tmp_path / name).write_text(text + "\n")

    def gateway(tokens: str) -> Any:
        path = tmp_path / "cluster.yaml"
        path.write_text(f"nodes:\n  g:\n    kind: gateway\n    tokens: {tokens}\n")
        return build_node(load_config(path).node("g"))

    made = gateway("[{token_file: a.token, roles: [client, admin]}]")
    assert made._tokens.roles(f"Bearer {token}") == {"client", "admin"}
    with pytest.raises(ConfigError, match=r"tokens\[1\]\.token_file.*repeats"):
        gateway("[{token_file: a.token, roles: [client]}, {token_file: b.token, roles: [worker]}]")
    with pytest.raises(ConfigError, match="under 16 characters"):
        gateway("[{token_file: short.token, roles: [client]}]")
    with pytest.raises(ConfigError, match=r"tokens\[0\]\.roles"):
        gateway("[{token_file: a.token, roles: [root]}]")
    with pytest.raises(ConfigError, match="cannot read"):
        gateway("[{token_file: missing.token, roles: [client]}]")
    with pytest.raises(ConfigError, match="non-empty list"):
        gateway("[]")


# -- what is refused --------------------------------------------------------------------------


def test_an_unknown_key_is_refused_naming_file_node_and_key(tmp_path: Path) -> None:
    message = refusal(tmp_path, worker_yaml(concurency="10"))

    assert message.startswith(f"{tmp_path / 'cluster.yaml'}: node 'worker-eu': ")
    assert "unknown key 'concurency'" in message
    assert "did you mean 'concurrency'" in message


def test_a_wrong_type_is_refused_naming_file_node_and_key(tmp_path: Path) -> None:
    message = refusal(tmp_path, worker_yaml(concurrency="ten"))

    assert message.startswith(f"{tmp_path / 'cluster.yaml'}: node 'worker-eu': ")
    assert "key 'concurrency'" in message
    assert "'ten'" in message


def test_a_worker_and_a_producer_may_connect_to_a_list_of_coordinators(tmp_path: Path) -> None:
    text = worker_yaml(connect="[tcp://a:5555, tcp://b:5555]") + """
  load:
    kind: producer
    type: square
    connect:
      - tcp://a:5555
      - tcp://b:5555
"""
    config = load_config(write(tmp_path, text))
    for name in ("worker-eu", "load"):
        assert config.node(name).connect == ("tcp://a:5555", "tcp://b:5555")  # type: ignore[attr-defined]


def test_a_bad_endpoint_in_a_connect_list_names_its_line(tmp_path: Path) -> None:
    text = worker_yaml() + "    connect:\n      - tcp://a:5555\n      - b:5555\n"
    message = refusal(tmp_path, text)
    assert "key 'connect[1]'" in message and message.endswith("(line 9)"), message


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"concurrency": "0"}, "concurrency"),
        ({"concurrency": "true"}, "concurrency"),  # a YAML boolean is not a number
        ({"queues": "default"}, "queues"),
        ({"queues": "[]"}, "queues"),
        ({"labels": "{region: eu}"}, "labels.region"),
        ({"shutdown_grace": "-1"}, "shutdown_grace"),
        ({"connect": "127.0.0.1:5555"}, "connect"),
        ({"connect": "[tcp://a:5555, 'b:5555']"}, "connect[1]"),
        ({"connect": "[]"}, "connect"),
        ({"handlers": '{square: "nodes.demo.square"}'}, "handlers.square"),
        ({"handlers": "{}"}, "handlers"),
    ],
)
def test_bad_worker_values_are_refused_with_their_key(
    tmp_path: Path, extra: dict[str, str], key: str
) -> None:
    message = refusal(tmp_path, worker_yaml(**extra))

    assert f"node 'worker-eu': key '{key}'" in message


def test_nested_security_keys_are_checked(tmp_path: Path) -> None:
    text = VALID.replace("roles: [worker]", "roles: [wrker]")
    message = refusal(tmp_path, text)

    assert "node 'coordinator': key 'security.authorized[0].roles'" in message
    text = VALID.replace("secret_key_file:", "secret_key:")
    assert "unknown key 'security.secret_key'" in refusal(tmp_path, text)


def test_cross_key_rules_are_checked(tmp_path: Path) -> None:
    text = VALID.replace("heartbeat_timeout: 10", "heartbeat_timeout: 1")
    assert "key 'heartbeat_timeout': must be greater" in refusal(tmp_path, text)
    text = VALID.replace(
        "max_message_size: 262144", "max_message_size: 2048\n    max_job_size: 4096"
    )
    assert "key 'max_job_size'" in refusal(tmp_path, text)


def test_a_missing_or_unknown_kind_and_a_missing_required_key_are_refused(
    tmp_path: Path,
) -> None:
    assert "node 'x': key 'kind'" in refusal(tmp_path, "nodes: {x: {bind: tcp://a:1}}")
    assert "node 'x': key 'kind'" in refusal(tmp_path, "nodes: {x: {kind: broker}}")
    assert "node 'p': key 'type': is required" in refusal(tmp_path, "nodes: {p: {kind: producer}}")


def test_a_file_that_is_not_a_config_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    assert refusal(tmp_path, "nodes: [a, b]").startswith(str(path))
    assert "unknown top-level key 'node'" in refusal(tmp_path, "node: {}\nnodes: {}")
    assert "not valid YAML" in refusal(tmp_path, "nodes: {a: [}")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_a_handler_that_does_not_import_is_refused_at_build_naming_it(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, worker_yaml(handlers='{square: "nodes.demo:sqare"}')))

    with pytest.raises(ConfigError) as caught:
        build_node(config.node("worker-eu"))

    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'cluster.yaml'}: node 'worker-eu': ")
    assert "key 'handlers.square'" in message
    assert "nodes.demo:sqare" in message


def test_asking_for_a_node_that_is_not_in_the_file_names_the_nodes(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))

    with pytest.raises(ConfigError, match="no node 'nope' \\(nodes: coordinator, worker-eu"):
        config.node("nope")


# -- relative paths ---------------------------------------------------------------------------


def test_relative_store_and_key_paths_resolve_against_the_files_directory(
    tmp_path: Path,
) -> None:
    config = load_config(write(tmp_path, VALID))

    coordinator = config.node("coordinator")
    assert isinstance(coordinator, CoordinatorConfig)
    base = tmp_path.resolve()
    assert coordinator.store == f"sqlite:///{base}/data/corral.db"
    assert coordinator.store.startswith("sqlite:////")
    assert coordinator.security is not None
    assert coordinator.security.secret_key_file == base / "keys/coordinator.key_secret"
    assert coordinator.security.authorized[0].public_key_file == base / "keys/worker.key"
    assert coordinator.security.authorized[1].public_key_file == Path("/etc/corral/client.key")


def test_absolute_in_memory_and_postgresql_store_urls_are_kept(tmp_path: Path) -> None:
    postgres = ("postgresql://corral:pw@db:5432/corral", "postgres://db/corral?sslmode=require")
    for url in ("sqlite:////var/corral.db", "sqlite:///:memory:", "memory", *postgres):
        path = write(tmp_path, f"nodes: {{c: {{kind: coordinator, store: '{url}'}}}}")
        assert load_config(path).node("c").store == url  # type: ignore[attr-defined]


def test_handler_modules_next_to_the_config_are_importable(tmp_path: Path) -> None:
    (tmp_path / "corral_test_jobs_nearby.py").write_text("def triple(x):\n    return 3 * x\n")
    path = write(tmp_path, worker_yaml(handlers='{triple: "corral_test_jobs_nearby:triple"}'))

    worker = build_node(load_config(path).node("worker-eu"))

    assert worker.handlers["triple"](5) == 15


def test_a_wildcard_bind_becomes_a_loopback_connect_address() -> None:
    assert connect_address("tcp://*:5555") == "tcp://127.0.0.1:5555"
    assert connect_address("tcp://0.0.0.0:7000") == "tcp://127.0.0.1:7000"
    assert connect_address("tcp://10.0.0.5:5555") == "tcp://10.0.0.5:5555"


# -- producer helpers -------------------------------------------------------------------------


def test_the_args_template_puts_the_job_index_in_place_of_i() -> None:
    assert expand(["{i}", 25, "img-{i}.png", {"n": "{i}"}], 7) == [7, 25, "img-7.png", {"n": 7}]


def test_percentiles_use_the_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile([3.0], 0.99)) == (
        50.0,
        99.0,
        3.0,
    )


def test_the_ha_config_gives_clients_every_coordinator_sharing_its_database() -> None:
    config = load_config(str(Path(__file__).resolve().parents[2] / "configs" / "ha.yaml"))
    a, b = config.coordinators()
    assert a.shares_store and a.store == b.store
    assert (a.failover_timeout, a.advertise) == (3.0, None)
    assert config.client_addresses() == ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556")
    assert config.node("worker").connect == ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556")
    coordinator = Coordinator.from_config(
        str(Path(__file__).resolve().parents[2] / "configs" / "ha.yaml"), "coordinator-b"
    )
    assert coordinator.failover_timeout == 3.0
    assert coordinator.name.startswith("coordinator-b@")


def test_coordinators_on_separate_stores_are_not_mixed_for_clients(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(
        "nodes:\n"
        "  one: {kind: coordinator, bind: 'tcp://127.0.0.1:7001', store: memory}\n"
        "  two: {kind: coordinator, bind: 'tcp://127.0.0.1:7002', store: memory,"
        " advertise: 'tcp://db2:7002'}\n"
    )
    assert load_config(str(path)).client_addresses() == ("tcp://127.0.0.1:7001",)


SCHEDULED = """
nodes:
  coordinator:
    kind: coordinator
    schedules:
      - name: nightly
        cron: "0 3 * * *"
        timezone: Europe/Paris
        job: {type: report, args: [daily], queue: reports}
      - name: beat
        every: 30
        overlap: allow
        job: {type: ping}
"""


def test_schedules_load_from_the_coordinator_yaml_with_their_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SCHEDULED)).node("coordinator")
    nightly, beat = config.schedules  # type: ignore[attr-defined]
    assert (nightly.name, nightly.cron, nightly.timezone, nightly.misfire) == (
        "nightly", "0 3 * * *", "Europe/Paris", "once",
    )  # fmt: skip
    assert nightly.job == {"type": "report", "args": ["daily"], "queue": "reports"}
    assert (beat.every, beat.overlap, beat.timezone) == (30.0, "allow", "UTC")


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ('{name: a, cron: "61 * * * *", job: {type: t}}', "bad cron expression"),
        ("{name: a, every: 5, timezone: Nowhere/Land, job: {type: t}}", "unknown time zone"),
        ("{name: a, job: {type: t}}", "exactly one of 'cron' and 'every'"),
        ("{name: a, every: 5, job: {type: t, args: [2026-01-01]}}", "cannot carry"),
        ("{name: a, every: 5, job: {type: t}}\n      - {name: a, every: 6, job: {type: t}}",
         "a second schedule named 'a'"),
    ],
)
def test_a_bad_schedule_is_refused_at_load_naming_it(tmp_path: Path, entry: str, says: str):
    text = f"""
nodes:
  coordinator:
    kind: coordinator
    schedules:
      - {entry}
"""
    message = refusal(tmp_path, text)
    assert says in message and "schedules[" in message, message


LIMITED = """
nodes:
  coordinator:
    kind: coordinator
    job_limits:
      - job_type: sync_account
        concurrency: 2
        rate: {count: 100, per: 60}
      - {queue: emails, rate: {count: 5, per: 0.5}}
      - {job_type: report, concurrency: 1}
"""


def test_job_limits_load_from_the_coordinator_yaml_into_the_coordinator(tmp_path: Path) -> None:
    coordinator = Coordinator.from_config(str(write(tmp_path, LIMITED)))

    assert coordinator.job_limits.rules == (
        LimitRule(job_type="sync_account", concurrency=2, rate=Rate(count=100, per=60.0)),
        LimitRule(queue="emails", rate=Rate(count=5, per=0.5)),
        LimitRule(job_type="report", concurrency=1),
    )


@pytest.mark.parametrize("value", ["[]", "null"])
def test_an_empty_job_limits_key_means_no_limits(tmp_path: Path, value: str) -> None:
    text = f"nodes:\n  coordinator:\n    kind: coordinator\n    job_limits: {value}\n"
    assert Coordinator.from_config(str(write(tmp_path, text))).job_limits.rules == ()
