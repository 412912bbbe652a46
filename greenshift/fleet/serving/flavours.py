"""The default handlers of each flavour, as SageMaker's framework containers define them.

- `generic` (`greenshift/model-server`): `sagemaker_inference.DefaultInferenceHandler`
  (aws/sagemaker-inference-toolkit): no default model_fn and no default predict_fn (both raise
  the toolkit's NotImplementedError), input_fn decodes JSON / CSV / NPY / NPZ to numpy, output_fn
  encodes to the first supported type of `Accept`.
- `sklearn` (`sagemaker-scikit-learn:<version>`): `HandlerService.
  DefaultSKLearnUserModuleInferenceHandler` (aws/sagemaker-scikit-learn-container): no default
  model_fn; input_fn decodes, makes a 1-D array one row and JSON / CSV float32; predict_fn is
  `model.predict`; output_fn encodes to `Accept` taken whole (a list of types is refused).
- `pytorch` (`pytorch-inference:<version>`): `DefaultPytorchInferenceHandler`
  (aws/sagemaker-pytorch-inference-toolkit): model_fn loads TorchScript `model.pt` (or the one
  `.pt` / `.pth`), input_fn makes a tensor, predict_fn runs the model under `no_grad` in eval
  mode, output_fn turns a tensor into a list and encodes it.

No default ever echoes its input. Errors keep the toolkits' messages word for word.
"""

from __future__ import annotations

import os
import sys
import textwrap
from typing import Any

from . import codecs

FLAVOURS = ("generic", "sklearn", "pytorch")


def _not_implemented(what: str, where: str) -> NotImplementedError:
    return NotImplementedError(
        textwrap.dedent(
            f"""
            Please provide a {what} implementation.
            See documentation for {what} at {where}
            """
        )
    )


SDK_DOCS = "https://sagemaker.readthedocs.io/en/stable/"
SDK_REPO = "https://github.com/aws/sagemaker-python-sdk"


class GenericDefaults:
    """sagemaker_inference.default_inference_handler.DefaultInferenceHandler."""

    @staticmethod
    def model_fn(model_dir: str) -> Any:
        raise _not_implemented("model_fn", SDK_DOCS)

    @staticmethod
    def input_fn(input_data: Any, content_type: str) -> Any:
        return codecs.decode(input_data, content_type)

    @staticmethod
    def predict_fn(data: Any, model: Any) -> Any:
        raise _not_implemented("predict_fn", SDK_DOCS)

    @staticmethod
    def output_fn(prediction: Any, accept: str) -> Any:
        for content_type in codecs.parse_accept(accept):
            if content_type in codecs.SUPPORTED_CONTENT_TYPES:
                return codecs.encode(prediction, content_type), content_type
        raise codecs.UnsupportedFormatError(accept)


class SklearnDefaults:
    """sagemaker_sklearn_container.handler_service.HandlerService's default handler."""

    @staticmethod
    def model_fn(model_dir: str) -> Any:
        raise _not_implemented("model_fn", SDK_REPO)

    @staticmethod
    def input_fn(input_data: Any, content_type: str) -> Any:
        np_array = codecs.decode(input_data, content_type)
        if len(np_array.shape) == 1:
            np_array = np_array.reshape(1, -1)
        return np_array.astype("float32") if content_type in codecs.UTF8_TYPES else np_array

    @staticmethod
    def predict_fn(input_data: Any, model: Any) -> Any:
        return model.predict(input_data)

    @staticmethod
    def output_fn(prediction: Any, accept: str) -> Any:
        return codecs.encode(prediction, accept), accept


INFERENCE_ACCELERATOR_PRESENT_ENV = "SAGEMAKER_INFERENCE_ACCELERATOR_PRESENT"
DEFAULT_MODEL_FILENAME = "model.pt"


class ModelLoadError(Exception):
    """The PyTorch toolkit's error for a model file that is not TorchScript."""


def _torch() -> Any:
    import torch  # only a PyTorch-flavour model's environment has it

    return torch


def pytorch_model_file(model_dir: str) -> str:
    """`model.pt`, else the one `.pt` / `.pth` file of the folder (the toolkit's rule and
    message). The toolkit tests the bare file names with os.path.isfile, relative to the working
    directory; inside model_dir is what it means, and what is checked here."""
    model_path = os.path.join(model_dir, DEFAULT_MODEL_FILENAME)
    if os.path.exists(model_path):
        return model_path
    model_files = [
        f
        for f in sorted(os.listdir(model_dir))
        if os.path.splitext(f)[1] in (".pt", ".pth") and os.path.isfile(os.path.join(model_dir, f))
    ]
    if len(model_files) != 1:
        raise ValueError(
            f"Exactly one .pth or .pt file is required for PyTorch models: {model_files}"
        )
    return os.path.join(model_dir, model_files[0])


class PytorchDefaults:
    """sagemaker_pytorch_serving_container.default_pytorch_inference_handler (CPU or CUDA; no
    Elastic Inference, which AWS retired)."""

    @staticmethod
    def model_fn(model_dir: str) -> Any:
        model_path = pytorch_model_file(model_dir)
        torch = _torch()
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            model = torch.jit.load(model_path, map_location=device)
        except RuntimeError as e:
            raise ModelLoadError(
                f"Failed to load {model_path}. Please ensure model is saved using torchscript."
            ) from e
        return model.to(device)

    @staticmethod
    def input_fn(input_data: Any, content_type: str) -> Any:
        torch = _torch()
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        np_array = codecs.decode(input_data, content_type)
        tensor = (
            torch.FloatTensor(np_array)
            if content_type in codecs.UTF8_TYPES
            else torch.from_numpy(np_array)
        )
        return tensor.to(device)

    @staticmethod
    def predict_fn(data: Any, model: Any) -> Any:
        torch = _torch()
        with torch.no_grad():
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            model = model.to(device)
            input_data = data.to(device)
            model.eval()
            return model(input_data)

    @staticmethod
    def output_fn(prediction: Any, accept: str) -> Any:
        torch = sys.modules.get("torch")  # no torch loaded: the prediction is no tensor
        if torch is not None and type(prediction) is torch.Tensor:
            prediction = prediction.detach().cpu().numpy().tolist()
        for content_type in codecs.parse_accept(accept):
            if content_type in codecs.SUPPORTED_CONTENT_TYPES:
                encoded = codecs.encode(prediction, content_type)
                if content_type == codecs.CSV:
                    encoded = encoded.encode("utf-8")
                return encoded
        raise codecs.UnsupportedFormatError(accept)


DEFAULTS: dict[str, Any] = {
    "generic": GenericDefaults,
    "sklearn": SklearnDefaults,
    "pytorch": PytorchDefaults,
}
