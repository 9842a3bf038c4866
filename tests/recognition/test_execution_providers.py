"""The models run on the onnxruntime execution providers FACEREC_EXECUTION_PROVIDERS names: the CPU by default,
a GPU where onnxruntime-gpu is installed; a name onnxruntime does not know, or one this build lacks, stops the
service with a message naming what is available."""

from __future__ import annotations

import subprocess
import sys

import onnxruntime
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from service.cli import main
from service.recognition.faces import FaceModel
from service.recognition.models import ExecutionProviderError, find_model_pack
from service.settings import Settings

CUDA = "CUDAExecutionProvider"
needs_no_cuda = pytest.mark.skipif(
    CUDA in onnxruntime.get_available_providers(), reason="this onnxruntime has CUDA: nothing to refuse"
)


def test_the_default_is_the_cpu(face_model: FaceModel) -> None:
    assert Settings().providers == ["CPUExecutionProvider"]
    assert face_model.active_providers == ["CPUExecutionProvider"]


def test_several_providers_are_listed_in_order_of_preference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEREC_EXECUTION_PROVIDERS", " CUDAExecutionProvider , CPUExecutionProvider,")
    assert Settings().providers == [CUDA, "CPUExecutionProvider"]


@pytest.mark.parametrize("value", ["CudaExecutionProvider", "cuda", "CPUExecutionProvider,GPUExecutionProvider"])
def test_a_name_onnxruntime_does_not_know_is_refused_with_the_available_ones(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(execution_providers=value)
    message = str(refused.value)
    assert "not an onnxruntime execution provider" in message
    assert "this onnxruntime has" in message
    assert "CPUExecutionProvider" in message


@pytest.mark.parametrize("value", ["", " , "])
def test_no_provider_at_all_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="at least one onnxruntime execution provider"):
        Settings(execution_providers=value)


@needs_no_cuda
def test_cuda_without_onnxruntime_gpu_stops_the_models_naming_what_is_available() -> None:
    with pytest.raises(ExecutionProviderError) as refused:
        FaceModel(find_model_pack(None), threads=1, providers=[CUDA])
    message = str(refused.value)
    assert f"asks for {CUDA}" in message
    assert f"available: {', '.join(onnxruntime.get_available_providers())}" in message
    assert "onnxruntime-gpu" in message


@needs_no_cuda
def test_facerec_serve_refuses_to_start_in_one_line(facerec_env: dict[str, str]) -> None:
    env = {**facerec_env, "FACEREC_EXECUTION_PROVIDERS": f"{CUDA},CPUExecutionProvider"}
    started = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=120
    )
    assert started.returncode == 1
    assert started.stderr.strip().splitlines() == [
        f"Error: FACEREC_EXECUTION_PROVIDERS asks for {CUDA}, which this onnxruntime ({onnxruntime.__version__}) "
        f"does not have; available: {', '.join(onnxruntime.get_available_providers())}; "
        "onnxruntime-gpu provides it, installed instead of onnxruntime"
    ]


def test_a_typo_in_the_setting_is_one_line_from_any_command(facerec_env: dict[str, str]) -> None:
    env = {**facerec_env, "FACEREC_EXECUTION_PROVIDERS": "CPUExecutionProvidr"}
    result = CliRunner().invoke(main, ["config"], env=env)
    assert result.exit_code == 1
    assert "FACEREC_EXECUTION_PROVIDERS" in result.output
    assert "CPUExecutionProvidr: not an onnxruntime execution provider" in result.output
