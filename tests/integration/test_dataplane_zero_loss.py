"""Zero loss: a steady load of 250 requests/s while weights shift 0 -> 10 -> 50 -> 100 %, while a
new endpoint is added by a reload, and while the old instances are stopped. Every request must
succeed, and the measured shares must be within 3 points of the set ones."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from greenshift.dataplane.router import RegistryTrafficRouter
from greenshift.registry.records import EndpointRouting, FleetRoute, VariantRoute
from tests.integration.dataplane_support import Dataplane, wait_for

pytestmark = pytest.mark.timeout(180)

RATE = 250  # requests per second
MAX_IN_FLIGHT = 64


@dataclass
class Result:
    started: float
    endpoint: str
    status: int  # 0: no answer (connection error)
    version: str | None


@pytest.fixture
def dp(tmp_path: Path) -> Iterator[Dataplane]:
    plane = Dataplane(tmp_path)
    stop = threading.Event()
    loop = threading.Thread(target=plane.controller.run, args=(stop,), daemon=True)
    plane.controller.interval = 0.1
    loop.start()
    try:
        yield plane
    finally:
        stop.set()
        loop.join(10)
        plane.close()


async def steady_load(
    url: str, endpoints: list[str], stop: asyncio.Event, results: list[Result], limit: float
) -> None:
    """Open loop at RATE requests/s (bounded by `limit` seconds and MAX_IN_FLIGHT)."""
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    timeout = aiohttp.ClientTimeout(total=10)

    async def one(session: aiohttp.ClientSession, endpoint: str) -> None:
        started = time.monotonic()
        try:
            async with session.post(
                f"{url}/endpoints/{endpoint}/invocations", json={"t": started}
            ) as r:
                body = await r.json(content_type=None)
                results.append(Result(started, endpoint, r.status, body.get("version")))
        except (aiohttp.ClientError, TimeoutError, ValueError):
            results.append(Result(started, endpoint, 0, None))
        finally:
            gate.release()

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=MAX_IN_FLIGHT), timeout=timeout
    ) as session:
        tasks: set[asyncio.Task[None]] = set()
        begin = time.monotonic()
        n = 0
        while not stop.is_set() and time.monotonic() - begin < limit:
            await gate.acquire()
            endpoint = endpoints[n % len(endpoints)] if len(endpoints) > 1 else endpoints[0]
            task = asyncio.create_task(one(session, endpoint))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            delay = begin + n / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.gather(*tasks)


def routing(green_share: float) -> EndpointRouting:
    return EndpointRouting(
        endpoint="Shop",
        variants=[
            VariantRoute(
                variant="A",
                weight=1.0,
                fleets=[
                    FleetRoute(fleet_id="Shop.A.blue", share=round(1 - green_share, 4)),
                    FleetRoute(fleet_id="Shop.A.green", share=green_share),
                ],
            )
        ],
    )


async def test_no_request_lost_while_traffic_shifts(dp: Dataplane) -> None:
    blue = [dp.model("echo-v1") for _ in range(2)]
    green = [dp.model("echo-v2") for _ in range(2)]
    for i, m in enumerate(blue):
        dp.instance("Shop", "A", "Shop.A.blue", i, m)
    for i, m in enumerate(green):
        dp.instance("Shop", "A", "Shop.A.green", i, m)
    cart = dp.model("echo-v1")
    dp.instance("Cart", "A", "Cart.A.one", 0, cart)
    router = RegistryTrafficRouter(dp.registry, poll_seconds=0.02)

    def noop(_: str) -> None:
        pass

    def shift(share: float) -> None:
        router.confirm("Shop", router.apply(routing(share)), 10, noop)

    await asyncio.to_thread(shift, 0.0)
    results: list[Result] = []
    stop = asyncio.Event()
    load = asyncio.create_task(steady_load(dp.url, ["Shop"], stop, results, limit=40))
    windows: list[tuple[float, float, float]] = []
    reloads = dp.controller.reloads

    for share in (0.0, 0.1, 0.5, 1.0):
        await asyncio.to_thread(shift, share)
        t0 = time.monotonic()
        if share == 0.5:
            # A new endpoint arrives: a seamless reload while the load runs.
            cart_routing = EndpointRouting(
                endpoint="Cart",
                variants=[
                    VariantRoute(
                        variant="A", weight=1, fleets=[FleetRoute(fleet_id="Cart.A.one", share=1)]
                    )
                ],
            )
            await asyncio.to_thread(router.confirm, "Cart", router.apply(cart_routing), 10, noop)
        await asyncio.sleep(2.5)
        windows.append((share, t0, time.monotonic()))
    assert dp.controller.reloads > reloads  # Cart came by a reload

    # The old fleet leaves: out of rotation first, then its processes stop (drain), then gone.
    for i, m in enumerate(blue):
        dp.instance("Shop", "A", "Shop.A.blue", i, m, state="Stopping")
    generation = dp.registry.routing_generation()
    await asyncio.to_thread(
        wait_for, lambda: dp.registry.applied_generation() >= generation, 10, "out of rotation"
    )
    for m in blue:
        await asyncio.to_thread(m.stop)
    for i, m in enumerate(blue):
        dp.instance("Shop", "A", "Shop.A.blue", i, m, state="Stopped")
    await asyncio.sleep(1.5)
    stop.set()
    await load

    failed = [r for r in results if r.status != 200]
    assert not failed, f"{len(failed)} failed requests, e.g. {failed[:3]}; windows {windows}"
    elapsed = results[-1].started - results[0].started
    assert len(results) / elapsed >= 200
    for share, t0, t1 in windows:
        window = [r for r in results if t0 <= r.started < t1]
        measured = sum(1 for r in window if r.version == "v2") / len(window)
        assert len(window) >= 400
        assert abs(measured - share) <= 0.03, (share, measured, len(window))
    # Requests after the blue fleet stopped all went to green.
    assert {r.version for r in results if r.started > windows[-1][2] + 0.5} == {"v2"}
    # The stopped instances are gone from the data plane (deleted once their connections closed).
    await asyncio.to_thread(
        wait_for,
        lambda: not [s for s in dp.haproxy.runtime.servers() if s.backend == "f.Shop.A.blue"],
        15,
        "the blue servers to be deleted",
    )
    # And the new endpoint serves.
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{dp.url}/endpoints/Cart/invocations", json={}) as r:
            assert r.status == 200
