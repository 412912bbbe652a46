"""The registry's tags on SQLite and PostgreSQL: order, overwrite, replace, and the 50-tag limit
holding under concurrent AddTags (each call all or nothing)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from greenshift.errors import ValidationError
from greenshift.registry.sql import SqlRegistry

ARN = "arn:aws:sagemaker:us-east-1:000000000000:model/m1"


def test_order_overwrite_replace_delete(registry: SqlRegistry) -> None:
    registry.add_tags(ARN, [("b", "1"), ("a", "2")])
    registry.add_tags(ARN, [("a", "3"), ("c", "4")])
    assert registry.list_tags(ARN) == [("b", "1"), ("a", "3"), ("c", "4")]
    registry.delete_tags(ARN, ["b", "zz"])
    assert registry.list_tags(ARN) == [("a", "3"), ("c", "4")]
    registry.replace_tags(ARN, [("x", "")])
    assert registry.list_tags(ARN) == [("x", "")]
    assert registry.list_tags(ARN.replace("m1", "other")) == []


def test_the_limit_holds_under_concurrent_adds(registry: SqlRegistry) -> None:
    def add(batch: int) -> bool:
        try:
            registry.add_tags(ARN, [(f"k{batch}-{i}", "v") for i in range(10)])
        except ValidationError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(add, range(8)))
    stored = registry.list_tags(ARN)
    assert sum(results) == 5 and len(stored) == 50
    with pytest.raises(ValidationError, match="at most 50 tags"):
        registry.add_tags(ARN, [("one-more", "v")])


def test_concurrent_adds_of_one_key_do_not_collide(registry: SqlRegistry) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: registry.add_tags(ARN, [("same", str(i))]), range(16)))
    [(key, _)] = registry.list_tags(ARN)
    assert key == "same"


def test_replace_refuses_too_many_before_it_writes(registry: SqlRegistry) -> None:
    registry.add_tags(ARN, [("keep", "1")])
    with pytest.raises(ValidationError, match="at most 50 tags"):
        registry.replace_tags(ARN, [(f"k{i}", "v") for i in range(51)])
    assert registry.list_tags(ARN) == [("keep", "1")]  # nothing was deleted
    # The last value given for a key wins, in the order the keys were first given.
    registry.replace_tags(ARN, [("b", "1"), ("a", "2"), ("b", "3")])
    assert registry.list_tags(ARN) == [("b", "3"), ("a", "2")]
    registry.replace_tags(ARN, [])
    assert registry.list_tags(ARN) == []
