"""Real Keras models nobody here wrote: keras.applications and the Keras examples.

The corpus behind tests/export/test_keras_corpus.py and scripts/keras_corpus.py.
:data:`APPLICATIONS` holds every ``keras.applications`` constructor with the
smallest input it accepts (``weights=None``); :data:`EXAMPLES` rebuilds the
architectures of the official Keras examples and the functional-API guide at small
sizes, layer for layer as the pages write them. :data:`REFUSED` are the examples
that use a custom layer class or a Lambda: nodenet never runs code from a file, so
the importer must refuse them with its short grouped message.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers, ops

# constructor -> the smallest (height, width) it builds with; 3 channels
APPLICATIONS: dict[str, int] = {
    "ConvNeXtTiny": 32,
    "ConvNeXtSmall": 32,
    "ConvNeXtBase": 32,
    "ConvNeXtLarge": 32,
    "ConvNeXtXLarge": 32,
    "DenseNet121": 32,
    "DenseNet169": 32,
    "DenseNet201": 32,
    "EfficientNetB0": 32,
    "EfficientNetB1": 32,
    "EfficientNetB2": 32,
    "EfficientNetB3": 32,
    "EfficientNetB4": 32,
    "EfficientNetB5": 32,
    "EfficientNetB6": 32,
    "EfficientNetB7": 32,
    "EfficientNetV2B0": 32,
    "EfficientNetV2B1": 32,
    "EfficientNetV2B2": 32,
    "EfficientNetV2B3": 32,
    "EfficientNetV2S": 32,
    "EfficientNetV2M": 32,
    "EfficientNetV2L": 32,
    "InceptionResNetV2": 75,
    "InceptionV3": 75,
    "MobileNet": 32,
    "MobileNetV2": 32,
    "MobileNetV3Small": 32,
    "MobileNetV3Large": 32,
    "NASNetMobile": 32,
    "NASNetLarge": 32,
    "ResNet50": 32,
    "ResNet101": 32,
    "ResNet152": 32,
    "ResNet50V2": 32,
    "ResNet101V2": 32,
    "ResNet152V2": 32,
    "VGG16": 32,
    "VGG19": 32,
    "Xception": 71,
}

# one of each family, for the test suite (the script runs them all); NASNetMobile is
# left out: Keras 3.15 refuses to build it with the torch backend
FAMILIES = (
    "ConvNeXtTiny",
    "DenseNet121",
    "EfficientNetB0",
    "EfficientNetV2B0",
    "InceptionResNetV2",
    "InceptionV3",
    "MobileNet",
    "MobileNetV2",
    "MobileNetV3Small",
    "ResNet50",
    "ResNet50V2",
    "VGG16",
    "Xception",
)


def application(name: str, include_top: bool) -> keras.Model:
    """``keras.applications.<name>`` at its smallest input, untrained, 10 classes on top."""
    size = APPLICATIONS[name]
    kwargs = {"weights": None, "include_top": include_top, "input_shape": (size, size, 3)}
    if include_top:
        kwargs["classes"] = 10
    return getattr(keras.applications, name)(**kwargs)


# -- the functional-API guide --------------------------------------------------------------


def guide_mnist_mlp() -> keras.Model:
    inputs = keras.Input(shape=(784,))
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10)(x)
    model = keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.RMSprop(),
        metrics=["accuracy"],
    )
    return model


def guide_autoencoder() -> keras.Model:
    encoder_input = keras.Input(shape=(28, 28, 1), name="img")
    x = layers.Conv2D(16, 3, activation="relu")(encoder_input)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    encoder_output = layers.GlobalMaxPooling2D()(x)
    x = layers.Reshape((4, 4, 1))(encoder_output)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu")(x)
    x = layers.UpSampling2D(3)(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    decoder_output = layers.Conv2DTranspose(1, 3, activation="relu")(x)
    return keras.Model(encoder_input, decoder_output, name="autoencoder")


def guide_nested_autoencoder() -> keras.Model:
    """The guide's "all models are callable": an encoder and a decoder model used as layers."""
    encoder_input = keras.Input(shape=(28, 28, 1), name="original_img")
    x = layers.Conv2D(16, 3, activation="relu")(encoder_input)
    x = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    encoder_output = layers.GlobalMaxPooling2D()(x)
    encoder = keras.Model(encoder_input, encoder_output, name="encoder")
    decoder_input = keras.Input(shape=(16,), name="encoded_img")
    x = layers.Reshape((4, 4, 1))(decoder_input)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    x = layers.UpSampling2D(3)(x)
    decoder_output = layers.Conv2DTranspose(1, 3, activation="relu")(x)
    decoder = keras.Model(decoder_input, decoder_output, name="decoder")
    autoencoder_input = keras.Input(shape=(28, 28, 1), name="img")
    encoded_img = encoder(autoencoder_input)
    decoded_img = decoder(encoded_img)
    return keras.Model(autoencoder_input, decoded_img, name="autoencoder")


def guide_ensemble() -> keras.Model:
    def get_model(name):
        inputs = keras.Input(shape=(128,))
        outputs = layers.Dense(1)(inputs)
        return keras.Model(inputs, outputs, name=name)

    model1, model2, model3 = get_model("m1"), get_model("m2"), get_model("m3")
    inputs = keras.Input(shape=(128,))
    outputs = layers.average([model1(inputs), model2(inputs), model3(inputs)])
    return keras.Model(inputs=inputs, outputs=outputs)


def guide_ticket_classifier() -> keras.Model:
    num_tags, num_words, num_departments = 12, 100, 4
    title_input = keras.Input(shape=(None,), name="title")
    body_input = keras.Input(shape=(None,), name="body")
    tags_input = keras.Input(shape=(num_tags,), name="tags")
    title_features = layers.Embedding(num_words, 64)(title_input)
    body_features = layers.Embedding(num_words, 64)(body_input)
    title_features = layers.LSTM(128)(title_features)
    body_features = layers.LSTM(32)(body_features)
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(num_departments, name="department")(x)
    model = keras.Model(
        inputs=[title_input, body_input, tags_input],
        outputs={"priority": priority_pred, "department": department_pred},
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss={
            "priority": keras.losses.BinaryCrossentropy(from_logits=True),
            "department": keras.losses.CategoricalCrossentropy(from_logits=True),
        },
        loss_weights={"priority": 1.0, "department": 0.2},
    )
    return model


def guide_toy_resnet() -> keras.Model:
    inputs = keras.Input(shape=(32, 32, 3), name="img")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    block_1_output = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_1_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_2_output = layers.add([x, block_1_output])
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_2_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_3_output = layers.add([x, block_2_output])
    x = layers.Conv2D(64, 3, activation="relu")(block_3_output)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10)(x)
    return keras.Model(inputs, outputs, name="toy_resnet")


# -- keras.io/examples ----------------------------------------------------------------------


def mnist_convnet() -> keras.Model:
    """vision/mnist_convnet."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )


def image_classification_from_scratch() -> keras.Model:
    """vision/image_classification_from_scratch (the small Xception), at 32x32."""
    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(128, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous_block_activation = x
    for size in [256, 512]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])
        previous_block_activation = x
    x = layers.SeparableConv2D(1024, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(1, activation=None)(x)
    return keras.Model(inputs, outputs)


def oxford_pets_unet() -> keras.Model:
    """vision/oxford_pets_image_segmentation (U-Net-like Xception), at 32x32."""
    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Conv2D(32, 3, strides=2, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous_block_activation = x
    for filters in [64, 128]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(filters, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])
        previous_block_activation = x
    for filters in [128, 64, 32]:
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.UpSampling2D(2)(x)
        residual = layers.UpSampling2D(2)(previous_block_activation)
        residual = layers.Conv2D(filters, 1, padding="same")(residual)
        x = layers.add([x, residual])
        previous_block_activation = x
    outputs = layers.Conv2D(3, 3, activation="softmax", padding="same")(x)
    return keras.Model(inputs, outputs)


def denoising_autoencoder() -> keras.Model:
    """vision/autoencoder."""
    inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, (3, 3), activation="relu", padding="same")(inputs)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2D(32, (3, 3), activation="relu", padding="same")(x)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2DTranspose(32, (3, 3), strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2DTranspose(32, (3, 3), strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2D(1, (3, 3), activation="sigmoid", padding="same")(x)
    return keras.Model(inputs, x)


def ct_scan_3d() -> keras.Model:
    """vision/3D_image_classification, at 16x16x8 with fewer filters."""
    inputs = keras.Input((16, 16, 8, 1))
    x = layers.Conv3D(filters=8, kernel_size=3, activation="relu")(inputs)
    x = layers.MaxPool3D(pool_size=2)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Conv3D(filters=16, kernel_size=3, activation="relu", padding="same")(x)
    x = layers.MaxPool3D(pool_size=2)(x)
    x = layers.BatchNormalization()(x)
    x = layers.GlobalAveragePooling3D()(x)
    x = layers.Dense(units=32, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(units=1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="3dcnn")


def timeseries_classification() -> keras.Model:
    """timeseries/timeseries_classification_from_scratch."""
    input_layer = keras.layers.Input((50, 1))
    x = input_layer
    for _ in range(3):
        x = keras.layers.Conv1D(filters=64, kernel_size=3, padding="same")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    gap = keras.layers.GlobalAveragePooling1D()(x)
    output_layer = keras.layers.Dense(2, activation="softmax")(gap)
    return keras.models.Model(inputs=input_layer, outputs=output_layer)


def timeseries_weather() -> keras.Model:
    """timeseries/timeseries_weather_forecasting."""
    inputs = keras.layers.Input(shape=(120, 7))
    lstm_out = keras.layers.LSTM(32)(inputs)
    outputs = keras.layers.Dense(1)(lstm_out)
    return keras.Model(inputs=inputs, outputs=outputs)


def transformer_timeseries() -> keras.Model:
    """timeseries/timeseries_classification_transformer, two small blocks."""

    def encoder(inputs):
        x = layers.MultiHeadAttention(key_dim=8, num_heads=2, dropout=0.25)(inputs, inputs)
        x = layers.Dropout(0.25)(x)
        x = layers.LayerNormalization(epsilon=1e-6)(x)
        res = x + inputs
        x = layers.Conv1D(filters=4, kernel_size=1, activation="relu")(res)
        x = layers.Dropout(0.25)(x)
        x = layers.Conv1D(filters=inputs.shape[-1], kernel_size=1)(x)
        x = layers.LayerNormalization(epsilon=1e-6)(x)
        return x + res

    inputs = keras.Input(shape=(20, 1))
    x = inputs
    for _ in range(2):
        x = encoder(x)
    x = layers.GlobalAveragePooling1D(data_format="channels_last")(x)
    x = layers.Dense(16, activation="relu")(x)
    x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def text_classification_from_scratch() -> keras.Model:
    """nlp/text_classification_from_scratch (vectorisation outside the model)."""
    inputs = keras.Input(shape=(None,), dtype="int64")
    x = layers.Embedding(200, 16)(inputs)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv1D(32, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.Conv1D(32, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(32, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)
    return keras.Model(inputs, predictions)


def bidirectional_lstm_imdb() -> keras.Model:
    """nlp/bidirectional_lstm_imdb."""
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(200, 16)(inputs)
    x = layers.Bidirectional(layers.LSTM(16, return_sequences=True))(x)
    x = layers.Bidirectional(layers.LSTM(16))(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def lstm_seq2seq() -> keras.Model:
    """nlp/lstm_seq2seq: the encoder's states start the decoder."""
    encoder_inputs = keras.Input(shape=(None, 12))
    encoder = keras.layers.LSTM(16, return_state=True)
    _, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = keras.Input(shape=(None, 14))
    decoder_lstm = keras.layers.LSTM(16, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = keras.layers.Dense(14, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    return keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)


def structured_data_wide() -> keras.Model:
    """structured_data/structured_data_classification: normalised numeric features."""
    numeric = [keras.Input(shape=(1,), name=name) for name in ("age", "trestbps", "chol")]
    encoded = []
    for feature in numeric:
        normalizer = layers.Normalization()
        normalizer.adapt(keras.random.normal((64, 1), seed=len(encoded)))
        encoded.append(normalizer(feature))
    all_features = layers.concatenate(encoded)
    x = layers.Dense(32, activation="relu")(all_features)
    x = layers.Dropout(0.5)(x)
    output = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(numeric, output)


def mnist_gru_stack() -> keras.Model:
    """The RNN guide's stacked recurrent model."""
    model = keras.Sequential()
    model.add(keras.Input(shape=(28, 28)))
    model.add(layers.GRU(32, return_sequences=True))
    model.add(layers.SimpleRNN(16))
    model.add(layers.Dense(10))
    return model


def conv1d_transpose_decoder() -> keras.Model:
    """generative/…: a 1-D decoder upsampling with Conv1DTranspose."""
    inputs = keras.Input(shape=(8, 4))
    x = layers.Conv1DTranspose(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = layers.Conv1DTranspose(4, 3, strides=2, padding="same")(x)
    return keras.Model(inputs, x)


# -- refused: custom classes and Lambda -------------------------------------------------------


class Sampling(layers.Layer):
    """generative/vae: a custom layer class."""

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean))
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def vae_encoder() -> keras.Model:
    encoder_inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Flatten()(x)
    z_mean = layers.Dense(2, name="z_mean")(x)
    z_log_var = layers.Dense(2, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    return keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")


def lambda_model() -> keras.Model:
    inputs = keras.Input(shape=(8,))
    x = layers.Dense(4)(inputs)
    x = layers.Lambda(lambda t: t * 2.0)(x)
    return keras.Model(inputs, x)


EXAMPLES: dict[str, Callable[[], keras.Model]] = {
    "guide_mnist_mlp": guide_mnist_mlp,
    "guide_autoencoder": guide_autoencoder,
    "guide_nested_autoencoder": guide_nested_autoencoder,
    "guide_ensemble": guide_ensemble,
    "guide_ticket_classifier": guide_ticket_classifier,
    "guide_toy_resnet": guide_toy_resnet,
    "mnist_convnet": mnist_convnet,
    "image_classification_from_scratch": image_classification_from_scratch,
    "oxford_pets_unet": oxford_pets_unet,
    "denoising_autoencoder": denoising_autoencoder,
    "ct_scan_3d": ct_scan_3d,
    "timeseries_classification": timeseries_classification,
    "timeseries_weather": timeseries_weather,
    "transformer_timeseries": transformer_timeseries,
    "text_classification_from_scratch": text_classification_from_scratch,
    "bidirectional_lstm_imdb": bidirectional_lstm_imdb,
    "lstm_seq2seq": lstm_seq2seq,
    "structured_data_wide": structured_data_wide,
    "mnist_gru_stack": mnist_gru_stack,
    "conv1d_transpose_decoder": conv1d_transpose_decoder,
}

REFUSED: dict[str, Callable[[], keras.Model]] = {
    "vae_encoder": vae_encoder,
    "lambda_model": lambda_model,
}
