"""Data capture (SageMaker `DataCaptureConfig`): HAProxy samples invocations and hands them to a
Lua queue (dataplane/capture.lua), the data-plane process writes them in SageMaker's capture
format under SageMaker's path layout (writer.py); `greenshift capture` reads them back."""
