"""No Docker engine runs here, so the production stack is checked statically: the services are
there, images are pinned, ports are the documented ones, and every command a Greenshift container
runs is a real `greenshift` subcommand."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from greenshift.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_of_the_production_stack(compose: dict) -> None:
    assert {
        "temporal",
        "temporal-db",
        "temporal-ui",
        "registry-db",
        "api",
        "worker",
        "agent",
        "dataplane",
        "metrics",
    } <= set(compose["services"])


def test_workers_scale_without_agents_and_one_agent_holds_the_instances(compose: dict) -> None:
    services = compose["services"]
    assert services["worker"]["environment"]["GREENSHIFT_WORKER_AGENT"] == "false"
    assert services["agent"]["command"][:2] == ["agent", "--address"]
    assert services["agent"]["network_mode"] == services["worker"]["network_mode"]


def test_third_party_images_are_pinned(compose: dict) -> None:
    third_party = {
        name: service["image"]
        for name, service in compose["services"].items()
        if service.get("image") and "build" not in service
    }
    assert {"temporal", "temporal-db", "registry-db"} <= set(third_party)
    for name, image in third_party.items():
        tag = image.rsplit(":", 1)[-1] if ":" in image else ""
        assert tag and tag != "latest", f"{name} uses an unpinned image {image!r}"


def test_greenshift_commands_exist(compose: dict) -> None:
    greenshift = [s for s in compose["services"].values() if "build" in s]
    assert greenshift, "no service builds the Greenshift image"
    for service in greenshift:
        command = service["command"]
        assert command[0] in cli.commands, f"`greenshift {command[0]}` does not exist"


def _published(compose: dict) -> dict[str, str]:
    """Host port -> the host address it is published on ("" for every interface)."""
    out = {}
    for service in compose["services"].values():
        for port in service.get("ports", []):
            parts = port.split(":")
            address, host_port = (parts[0], parts[1]) if len(parts) == 3 else ("", parts[0])
            out[host_port] = address
    return out


def test_documented_ports(compose: dict) -> None:
    assert {"7070", "8080", "7233", "8233", "8405"} <= set(_published(compose))


def test_temporal_and_the_stats_are_not_published_to_the_world(compose: dict) -> None:
    # Temporal has no authentication in this file: starting a workflow on it is a deployment
    # (issue 14 item 1); the stats name every endpoint and fleet.
    published = _published(compose)
    for port in ("7233", "8233", "8405"):
        assert published[port] == "127.0.0.1", port


def test_registry_and_temporal_on_postgresql(compose: dict) -> None:
    env = compose["services"]["api"]["environment"]
    assert env["GREENSHIFT_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["GREENSHIFT_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert compose["services"]["temporal"]["environment"]["DB"] == "postgres12"


def test_api_beyond_loopback_requires_access_keys(compose: dict) -> None:
    env = compose["services"]["api"]["environment"]
    assert env["GREENSHIFT_HOST"] == "0.0.0.0"
    assert "GREENSHIFT_ACCESS_KEYS" in env


def test_dockerfile_copies_what_exists() -> None:
    copies = [
        line.split()[1:-1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
    ]
    assert copies, "the Dockerfile copies nothing"
    for sources in copies:
        assert sources, "a COPY without sources"
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
