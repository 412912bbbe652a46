"""Wire contracts of the SageMaker and CloudWatch operations Greenshift serves.

`sagemaker_shapes` / `cloudwatch_shapes` are generated from botocore's model; `validation` turns
a document into a shape (AWS's error messages); `operations` maps operation names to shapes.
"""

from greenshift.contracts.validation import (
    SerializationError,
    format_validation_error,
    parse_body,
    parse_request,
)

__all__ = ["SerializationError", "format_validation_error", "parse_body", "parse_request"]
