"""The catalog holds every block the product promises."""

from nodenet.engine.catalog import LAYERS

REQUIRED_BLOCKS = """
Input Output Dense Activation Dropout Flatten Reshape Permute RepeatVector Conv1D Conv2D
Conv2DTranspose UpSampling1D UpSampling2D MaxPooling1D MaxPooling2D AveragePooling1D
AveragePooling2D GlobalMaxPooling1D GlobalMaxPooling2D GlobalAveragePooling1D
GlobalAveragePooling2D SimpleRNN LSTM GRU Bidirectional Embedding BatchNormalization
LayerNormalization Concatenate Add Subtract Multiply Average Maximum Minimum Dot
""".split()


def test_catalog_has_every_block_of_the_spec():
    missing = [name for name in REQUIRED_BLOCKS if name not in LAYERS]
    assert not missing, f"blocks missing from the catalog: {missing}"
