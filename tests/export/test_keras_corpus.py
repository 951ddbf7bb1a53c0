"""Real Keras models come in whole: every layer as Keras computes it, and both exports.

The corpus (tests/support/keras_corpus.py) is keras.applications, one constructor
of each family with and without its top, and the architectures of the Keras
examples and the functional-API guide, built by Keras itself at small sizes with
``weights=None``. Each is saved as a ``.keras`` archive and imported as a user
would; then, layer by layer:

- the output shape, the trainable and the non-trainable parameter counts equal Keras's;
- with Keras's weights (perturbed so zero biases, unit gammas and fresh moving
  statistics are exercised), every layer's output equals Keras's ``predict``
  within 1e-4 (relative to the layer's largest value);
- the exported Keras and PyTorch code predicts what nodenet predicts within 1e-4.

The models with a custom layer class or a Lambda are refused with the short
grouped message. ``scripts/keras_corpus.py`` runs every constructor.
"""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) builds the corpus")
torch = pytest.importorskip("torch", reason="the `ref` extra (torch) runs the exports")
pytest.importorskip("h5py", reason="the `test` extra (h5py) reads a .keras file's weights")

from nodenet.errors import NodenetError  # noqa: E402
from nodenet.export.keras_import import import_keras  # noqa: E402
from tests.support import keras_corpus  # noqa: E402
from tests.support.keras_check import check_model  # noqa: E402

pytestmark = pytest.mark.slow

CASES = [f"{name}:top" for name in keras_corpus.FAMILIES]
CASES += [f"{name}:notop" for name in keras_corpus.FAMILIES]
CASES += list(keras_corpus.EXAMPLES)


def build(case: str):
    if ":" in case:
        name, top = case.split(":")
        return keras_corpus.application(name, top == "top")
    return keras_corpus.EXAMPLES[case]()


@pytest.mark.parametrize("case", CASES)
def test_real_model_imports_layer_for_layer(case, tmp_path):
    keras.utils.set_random_seed(7)
    check_model(build(case), tmp_path, case)


@pytest.mark.parametrize("case", sorted(keras_corpus.REFUSED))
def test_custom_code_is_refused_in_a_few_grouped_lines(case, tmp_path):
    kmodel = keras_corpus.REFUSED[case]()
    path = tmp_path / "model.keras"
    kmodel.save(path)
    with pytest.raises(NodenetError) as caught:
        import_keras(path)
    message = str(caught.value)
    assert len(message.splitlines()) <= 12, message
    assert ("Lambda" in message) or ("Sampling" in message), message
