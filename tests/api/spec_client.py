"""The spec document's own Python client, extracted from it at test time and pointed at a live server."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "batch-photo-recognition.md"
SPEC_HOST = "https://facerecognition.mpanel.app"


def load_spec_client(base_url: str) -> SimpleNamespace:
    """Execute the spec's "Python Script" example with only its URL changed; returns its functions."""
    text = SPEC.read_text()
    section = text.split("### Python Script", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "the spec's Python script example was not found"
    source = code.group(1).replace(SPEC_HOST, base_url)
    source = source.split('if __name__ == "__main__":', 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(source, str(SPEC), "exec"), namespace)
    return SimpleNamespace(
        batch_recognize_photos=namespace["batch_recognize_photos"],
        download_batch_csv=namespace["download_batch_csv"],
    )
