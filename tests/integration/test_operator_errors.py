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
