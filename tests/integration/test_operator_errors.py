"""What an operator sees from real `corral` processes when something is in the way: one line
naming the config key and address, never a bare "Address already in use"."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.integration.conftest import corral, free_port


@pytest.mark.parametrize("key", ["dashboard", "metrics"])
def test_an_addon_port_in_use_names_its_config_key_and_address(tmp_path: Path, key: str):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        config = tmp_path / "c.yaml"
        config.write_text(
            "nodes:\n  coordinator:\n    kind: coordinator\n"
            f"    bind: tcp://127.0.0.1:{free_port()}\n"
            f'    {key}: {{bind: "127.0.0.1:{port}"}}\n'
        )
        done = corral("run", str(config), "--node", "coordinator")
    assert done.returncode == 1
    assert f"{key}.bind 127.0.0.1:{port}: address already in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_connect_without_a_scheme_is_one_line_and_exit_2():
    done = corral("status", "--connect", "localhost:5555")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --connect: expected an endpoint like tcp://127.0.0.1:5555, got 'localhost:5555'"
    ]


def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path: Path):
    config = tmp_path / "broken.yaml"
    config.write_text("nodes:\n  coordinator: {kind: coordinator\n")
    done = corral("run", str(config))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {config}, line ") and ", column " in line
    assert "<unicode string>" not in line
