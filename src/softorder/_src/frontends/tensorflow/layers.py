"""Keras layers: hold the hyperparameters, call the `softorder.tensorflow` functions."""

from __future__ import annotations

import keras

from . import frontend as F

__all__ = ["SoftSort", "SoftRank", "SoftTopKMask", "SoftTopKMagnitude"]


def _check_backend(cls):
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            f"softorder.tensorflow.{cls.__name__} calls TensorFlow ops and needs the TensorFlow "
            f"Keras backend; this process runs Keras with backend {backend!r} "
            "(set KERAS_BACKEND=tensorflow before importing keras)."
        )


@keras.saving.register_keras_serializable(package="softorder")
class SoftSort(keras.layers.Layer):
    """Soft sort along ``axis`` (`softorder.tensorflow.soft_sort`) as a Keras layer.

    Example:
      >>> import numpy as np
      >>> from softorder.tensorflow import SoftSort
      >>> SoftSort(regularization_strength=1.0)(np.array([[5.0, 1.0, 2.0]])).numpy().round(4)
      array([[1.6667, 2.6667, 3.6667]], dtype=float32)
    """

    _fn = staticmethod(F.soft_sort)

    def __init__(self, axis=-1, descending=False, regularization="l2",
                 regularization_strength=1.0, p=4 / 3, straight_through=False, **kwargs):
        _check_backend(type(self))
        super().__init__(**kwargs)
        self.axis = axis
        self.descending = descending
        self.regularization = regularization
        self.regularization_strength = regularization_strength
        self.p = p
        self.straight_through = straight_through

    def call(self, inputs):
        return self._fn(inputs, axis=self.axis, descending=self.descending,
                        regularization=self.regularization,
                        regularization_strength=self.regularization_strength, p=self.p,
                        straight_through=self.straight_through)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "descending": self.descending,
                "regularization": self.regularization,
                "regularization_strength": self.regularization_strength, "p": self.p,
                "straight_through": self.straight_through}


@keras.saving.register_keras_serializable(package="softorder")
class SoftRank(SoftSort):
    """Soft ranks along ``axis`` (`softorder.tensorflow.soft_rank`), 1-based, as a Keras layer."""

    _fn = staticmethod(F.soft_rank)


@keras.saving.register_keras_serializable(package="softorder")
class SoftTopKMask(keras.layers.Layer):
    """Sparse soft top-k mask along ``axis`` (`softorder.tensorflow.soft_topk_mask`).

    Example:
      >>> import numpy as np
      >>> from softorder.tensorflow import SoftTopKMask
      >>> layer = SoftTopKMask(2, regularization_strength=0.01)
      >>> layer(np.array([[-5.0, -2.0, 3.0, 1.0]])).numpy()
      array([[0., 0., 1., 1.]], dtype=float32)
    """

    _fn = staticmethod(F.soft_topk_mask)

    def __init__(self, k, axis=-1, regularization_strength=1.0, p=4 / 3, solver="pav",
                 max_iter=1000, tol=1e-9, straight_through=False, **kwargs):
        _check_backend(type(self))
        super().__init__(**kwargs)
        self.k = k
        self.axis = axis
        self.regularization_strength = regularization_strength
        self.p = p
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.straight_through = straight_through

    def call(self, inputs):
        return self._fn(inputs, self.k, axis=self.axis,
                        regularization_strength=self.regularization_strength, p=self.p,
                        solver=self.solver, max_iter=self.max_iter, tol=self.tol,
                        straight_through=self.straight_through)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "k": self.k, "axis": self.axis,
                "regularization_strength": self.regularization_strength, "p": self.p,
                "solver": self.solver, "max_iter": self.max_iter, "tol": self.tol,
                "straight_through": self.straight_through}


@keras.saving.register_keras_serializable(package="softorder")
class SoftTopKMagnitude(SoftTopKMask):
    """Sparse soft top-k in magnitude (`softorder.tensorflow.soft_topk_magnitude`)."""

    _fn = staticmethod(F.soft_topk_magnitude)
