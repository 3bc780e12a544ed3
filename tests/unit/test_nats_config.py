"""Which nats-server the cluster runs, and the options its version accepts (no server)."""

from __future__ import annotations

import random
import stat
from pathlib import Path

import pytest

from firmware_sim import nats_cluster
from firmware_sim.broker import BrokerTls
from firmware_sim.errors import SimError
from firmware_sim.fleet import summarize
from firmware_sim.nats_cluster import NatsCluster, NatsNode, find_nats_server


def _executable(path: Path, version: str = "v2.15.1") -> Path:
    path.write_text(f"#!/bin/sh\necho 'nats-server: {version}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _cluster(tmp_path: Path, version: tuple[int, int, int]) -> NatsCluster:
    tls = BrokerTls(tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key")
    nodes = [NatsNode(f"n{i}", 4222 + i, 6222 + i, 8883 + i, tmp_path) for i in range(3)]
    return NatsCluster(tmp_path, tls, "", nodes, "nats-server", version)


def test_environment_variable_wins_over_venv_and_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = _executable(tmp_path / "my-nats")
    monkeypatch.setenv("EDGE_NATS_SERVER", str(chosen))
    assert find_nats_server() == str(chosen)


def test_a_wrong_environment_variable_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_NATS_SERVER", str(tmp_path / "typo"))
    with pytest.raises(SimError, match="not an executable"):
        find_nats_server()


def test_the_venv_binary_comes_before_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    in_venv = _executable(venv_bin / "nats-server")
    on_path = tmp_path / "path"
    on_path.mkdir()
    _executable(on_path / "nats-server", "v2.9.10")
    monkeypatch.delenv("EDGE_NATS_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(on_path))
    monkeypatch.setattr("sys.executable", str(venv_bin / "python"))
    assert find_nats_server() == str(in_venv)
    in_venv.unlink()
    assert find_nats_server() == str(on_path / "nats-server")


def test_version_is_read_from_the_binary(tmp_path: Path) -> None:
    binary = _executable(tmp_path / "nats", "v2.10.3")
    assert nats_cluster.nats_server_version(str(binary)) == (2, 10, 3)
    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\necho hello\n")
    silent.chmod(0o700)
    with pytest.raises(SimError, match="no version"):
        nats_cluster.nats_server_version(str(silent))


def test_js_api_timeout_only_where_the_server_accepts_it(tmp_path: Path) -> None:
    old = _cluster(tmp_path, (2, 9, 10))
    new = _cluster(tmp_path, (2, 15, 1))
    assert "js_api_timeout:" not in old._config(old.nodes[0])  # 2.9 refuses to start with it
    assert f'js_api_timeout: "{nats_cluster.JS_API_TIMEOUT}"' in new._config(new.nodes[0])


JSZ: dict[str, object] = {  # the shape of /jsz?accounts=true&streams=true on 2.9 and 2.15 (trimmed)
    "meta_cluster": {"name": "edge", "leader": "n1", "cluster_size": 3},
    "account_details": [
        {
            "name": "$G",
            "stream_detail": [
                {"name": "$MQTT_sess", "cluster": {"name": "edge", "leader": "n1"}},
                {"name": "$MQTT_msgs", "cluster": {"name": "edge", "leader": "n2"}},
                {"name": "$MQTT_rmsgs", "cluster": {"name": "edge", "leader": "n1"}},
                {"name": "no-leader-yet", "cluster": {"name": "edge"}},
            ],
        }
    ],
}


def test_leaders_are_read_from_the_monitoring_reply() -> None:
    assert nats_cluster.leaders_from_jsz(JSZ) == {
        "meta": "n1",
        "$MQTT_sess": "n1",
        "$MQTT_msgs": "n2",
        "$MQTT_rmsgs": "n1",
    }
    assert nats_cluster.leaders_from_jsz({}) == {}


def test_the_victim_is_chosen_by_role() -> None:
    leaders = nats_cluster.leaders_from_jsz(JSZ)
    nodes = ["n1", "n2", "n3"]
    rng = random.Random(1)  # noqa: S311 - test data
    assert nats_cluster.choose_victim("session-leader", nodes, leaders, rng) == "n1"
    assert nats_cluster.choose_victim("msgs-leader", nodes, leaders, rng) == "n2"
    assert nats_cluster.choose_victim("other", nodes, leaders, rng) == "n3"
    assert {nats_cluster.choose_victim("random", nodes, leaders, rng) for _ in range(50)} == set(
        nodes
    )
    with pytest.raises(SimError, match="every node leads"):
        nats_cluster.choose_victim("other", ["n1", "n2"], leaders, rng)
    with pytest.raises(SimError, match="no leader"):
        nats_cluster.choose_victim("session-leader", nodes, {}, rng)
    with pytest.raises(SimError, match="--kill"):
        nats_cluster.choose_victim("leader", nodes, leaders, rng)


def test_failover_figures_use_nearest_rank_and_show_never() -> None:
    assert summarize([]) == "no devices"
    times = [float(i) for i in range(1, 21)]
    assert summarize(times) == "20 devices, p50 10.00 s, p95 19.00 s, max 20.00 s"
    assert summarize([0.5, float("inf")]).endswith("max inf s")
