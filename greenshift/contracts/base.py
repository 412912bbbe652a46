"""The base of every wire shape: PascalCase members, AWS timestamps, AWS validation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Self

import regex
from pydantic import BaseModel, BeforeValidator, ConfigDict, GetCoreSchemaHandler, PlainSerializer
from pydantic_core import PydanticCustomError, core_schema


def _parse_timestamp(value: Any) -> Any:
    # AWS JSON 1.1 carries timestamps as epoch seconds; naive datetimes are taken as UTC.
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            # Out of datetime's range (or NaN): a validation error, not an internal failure.
            raise PydanticCustomError("datetime_out_of_range", "Timestamp out of range") from None
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(_parse_timestamp),
    PlainSerializer(lambda d: d.timestamp(), return_type=float, when_used="json"),
]


class AwsShape(BaseModel):
    """A structure of an AWS service model. Members keep their wire names (PascalCase)."""

    model_config = ConfigDict(
        # A newer client may send members our pinned model does not know: ignore, as AWS does.
        extra="ignore",
        frozen=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON document of this shape as AWS sends it: no null members."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_wire(cls, document: Any) -> Self:
        """Parse a wire document; raises pydantic's ValidationError (see `validation`)."""
        return cls.model_validate(document)


class AwsPattern:
    """A botocore `pattern` constraint, matched as AWS does.

    AWS validates with Java's `Pattern.matches` (the whole value must match) and its patterns use
    Unicode classes such as `\\p{L}` that Python's `re` lacks, so the `regex` module checks them.
    """

    def __init__(self, pattern: str, also: str | None = None) -> None:
        self.pattern = pattern
        self._compiled = regex.compile(pattern)
        # A local extension (tools/gen_contracts.py PATTERN_EXTENSIONS) accepted besides AWS's.
        self._also = regex.compile(also) if also else None

    def __get_pydantic_core_schema__(
        self, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def _check(self, value: str) -> str:
        if self._compiled.fullmatch(value) is None and not (
            self._also is not None and self._also.fullmatch(value)
        ):
            raise PydanticCustomError(
                "string_pattern_mismatch",
                "String should match pattern '{pattern}'",
                {"pattern": self.pattern},
            )
        return value

    def __repr__(self) -> str:
        return f"AwsPattern({self.pattern!r})"
