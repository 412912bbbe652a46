"""Instance logs where SageMaker users look for them: a CloudWatch Logs-compatible store.

Every model instance appends its stdout+stderr to `<home>/instances/<instance-id>/server.log`
(the fleet's contract). The shipper (`shipper.py`) tails those files into the store
(`store.py`); the control API serves them as CloudWatch Logs (`api.py`), so boto3's `logs`
client and `greenshift logs` read them: log group `/aws/sagemaker/Endpoints/<EndpointName>`,
one stream `<VariantName>/<instance-id>` per instance, as SageMaker names them.
"""
