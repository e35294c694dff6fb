"""Every field of the policy and training config dataclasses has a one-line docstring."""

import ast
import inspect

import pytest

from robolearn.policies import get_config_class, list_policies
from robolearn.policies.config import PolicyConfig
from robolearn.training import config as train_config

from robolearn.eval.config import EvalConfig, EvalProtocol  # noqa: E402

CLASSES = [PolicyConfig] + [get_config_class(n) for n in list_policies() + ["pretrain"]] + [
    train_config.OptimConfig, train_config.TrainConfig, *train_config.TRAIN_CONFIGS.values(),
    EvalProtocol, EvalConfig]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_field_has_a_docstring(cls):
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    missing = []
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign) and "ClassVar" not in ast.unparse(node.annotation):
            nxt = body[i + 1] if i + 1 < len(body) else None
            ok = (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                  and isinstance(nxt.value.value, str) and nxt.value.value.strip())
            if not ok:
                missing.append(node.target.id)
    assert not missing, f"{cls.__name__} fields without a docstring: {missing}"
