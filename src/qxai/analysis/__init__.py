"""QIXAI layer analyses: spectra, similarity, mutual information and integrated gradients."""

from qxai.analysis.attribution import integrated_gradients
from qxai.analysis.capture import capture_activations, capture_transformer
from qxai.analysis.mutual_info import gaussian_mi, ksg_mi, mutual_information_matrix
from qxai.analysis.similarity import gram_cosine, linear_cka, similarity_matrices
from qxai.analysis.spectrum import density_matrix, layer_spectrum

__all__ = [
    "capture_activations", "capture_transformer", "density_matrix", "gaussian_mi", "gram_cosine",
    "integrated_gradients", "ksg_mi", "layer_spectrum", "linear_cka", "mutual_information_matrix",
    "similarity_matrices",
]  # fmt: skip
