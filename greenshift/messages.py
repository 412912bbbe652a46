"""SageMaker's refusal messages (SEMANTICS.md section 2), written once.

The API checks them on arrival, the registry's compare-and-set on taking the endpoint, and the
workflows' prepare activity again (a workflow may be started from the temporal CLI without the
API): all three must say exactly the same thing.
"""

from __future__ import annotations


def in_progress_endpoint(arn: str) -> str:
    return f'Cannot update in-progress endpoint "{arn}".'


def failed_endpoint(arn: str) -> str:
    return f'Cannot update failed endpoint "{arn}". Delete it and create it again.'


def config_already_deployed(arn: str, config_name: str) -> str:
    """Our rule: UpdateEndpoint to the config already serving."""
    return (
        f'Endpoint "{arn}" already runs endpoint configuration "{config_name}". To deploy a '
        "change, create a new EndpointConfig and call UpdateEndpoint with it."
    )
