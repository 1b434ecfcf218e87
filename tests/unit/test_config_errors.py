"""A config error says where: a YAML syntax error names the file, line and column (not
`<unicode string>`); a refused key names its line too; and numbers are checked for range."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodes.config import load_config
from nodes.config.fields import ConfigError
from transport.validation.limits import MAX_NAME_CHARS

HEAD = "nodes:\n  coordinator:\n    kind: coordinator\n"


def refusal(tmp_path: Path, text: str) -> str:
    path = tmp_path / "cluster.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_a_yaml_syntax_error_names_the_file_line_and_column_in_one_line(tmp_path: Path):
    message = refusal(tmp_path, HEAD + "    bind: [tcp://127.0.0.1:5555\n    store: memory\n")
    assert message.startswith(f"{tmp_path / 'cluster.yaml'}, line ")
    assert "column" in message and "not valid YAML" in message
    assert "<unicode string>" not in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("    bnd: tcp://127.0.0.1:5555\n", 4),  # unknown key
        ("    store: memory\n    heartbeat_interval: soon\n", 5),  # wrong type
        ("    dashboard:\n      title: x\n      bind: '127.0.0.1:70000'\n", 6),  # nested key
        ("    store: memory\n    metrics:\n      bind: '127.0.0.1:1'\n      bnd: x\n", 7),
        ("    heartbeat_interval: 10\n    heartbeat_timeout: 5\n", 5),  # a cross-key rule
    ],
)
def test_a_refused_key_names_its_line(tmp_path: Path, body: str, line: int):
    assert refusal(tmp_path, HEAD + body).endswith(f"(line {line})")


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("    heartbeat_interval: .inf\n", "heartbeat_interval"),
        ("    heartbeat_interval: .nan\n", "heartbeat_interval"),
        ("    visibility_timeout: 1e12\n", "visibility_timeout"),
        ("    reaper_interval: 0\n", "reaper_interval"),
        ("    bind: tcp://127.0.0.1:0\n", "bind"),
        ("    bind: tcp://127.0.0.1:65536\n", "bind"),
        ("    bind: tcp://127.0.0.1\n", "bind"),
        ("    metrics: {bind: '127.0.0.1:65536'}\n", "metrics.bind"),
        ("    max_message_size: 4294967296\n", "max_message_size"),
        ("    max_job_size: 0\n", "max_job_size"),
    ],
)
def test_timeouts_intervals_ports_and_sizes_out_of_range_are_refused(
    tmp_path: Path, body: str, key: str
):
    assert f"key '{key}'" in refusal(tmp_path, HEAD + body)


def test_a_worker_concurrency_beyond_ten_thousand_is_refused(tmp_path: Path):
    text = (
        "nodes:\n  w:\n    kind: worker\n    handlers: {square: 'nodes.demo:square'}\n"
        "    concurrency: 1000000\n"
    )
    assert "key 'concurrency'" in refusal(tmp_path, text)


LIMIT = "    job_limits:\n      - "  # the first item on line 5


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ("{job_type: t, concurency: 2}",
         "unknown key 'job_limits[0].concurency' (did you mean 'concurrency'?)"),
        ("{job_type: t, queue: q, concurrency: 2}",
         "key 'job_limits[0]': a limit is for a job_type or for a queue"),
        ("{concurrency: 2}", "key 'job_limits[0]': a limit is for a job_type or for a queue"),
        ("{job_type: t}", "key 'job_limits[0]': a limit needs concurrency, rate or both"),
        ("{job_type: t, concurrency: 0}",
         "key 'job_limits[0].concurrency': expected an integer >= 1, got 0"),
        ("{job_type: t, concurrency: true}",
         "key 'job_limits[0].concurrency': expected an integer, got True (bool)"),
        ("{job_type: t, concurrency: 1.5}", "key 'job_limits[0].concurrency': expected an integer"),
        ("{queue: q, rate: 5}", "field 'job_limits[0].rate' must be a map {count, per}"),
        ("{queue: q, rate: {count: true, per: 1}}",
         "field 'job_limits[0].rate.count' must be an integer >= 1"),
        ("{queue: q, rate: {count: 0, per: 1}}",
         "field 'job_limits[0].rate.count' must be an integer >= 1"),
        ("{queue: q, rate: {count: 1, per: 0}}",
         "field 'job_limits[0].rate.per' must be a number of seconds > 0"),
        ("{queue: q, rate: {count: 1, per: .inf}}",
         "field 'job_limits[0].rate.per' must be a number of seconds > 0"),
        ("{queue: q, rate: {count: 1}}",
         "field 'job_limits[0].rate.per' must be a number of seconds > 0"),
        ("{queue: q, rate: {count: 1, per: 1, burst: 2}}",
         "unknown key 'job_limits[0].rate.burst'"),
        ("{job_type: '', concurrency: 1}",
         "key 'job_limits[0].job_type': expected a non-empty string"),
        (f"{{queue: {'q' * (MAX_NAME_CHARS + 1)}, concurrency: 1}}",
         f"key 'job_limits[0].queue': expected at most {MAX_NAME_CHARS} characters"),
        ("3", "key 'job_limits[0]': expected a mapping, got 3 (int)"),
    ],
)
def test_a_bad_job_limit_is_refused_naming_its_place_and_line(tmp_path: Path, item: str, says: str):
    message = refusal(tmp_path, HEAD + LIMIT + item + "\n")
    assert "node 'coordinator'" in message and says in message, message
    assert message.endswith("(line 5)"), message


@pytest.mark.parametrize(
    ("items", "says"),
    [
        ("{job_type: t, concurrency: 1}\n      - {job_type: t, rate: {count: 1, per: 1}}",
         "key 'job_limits[1]': a second limit for job_type 't' (line 6)"),
        ("{queue: q, concurrency: 1}\n      - {queue: q, concurrency: 2}",
         "key 'job_limits[1]': a second limit for queue 'q' (line 6)"),
    ],
)
def test_a_second_limit_for_one_job_type_or_queue_is_refused(
    tmp_path: Path, items: str, says: str
):
    assert refusal(tmp_path, HEAD + LIMIT + items + "\n").endswith(says)


def test_job_limits_that_are_not_a_list_are_refused(tmp_path: Path):
    message = refusal(tmp_path, HEAD + "    job_limits: {job_type: t, concurrency: 1}\n")
    assert "key 'job_limits': expected a list of limits (line 4)" in message, message
