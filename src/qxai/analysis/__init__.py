"""QIXAI layer analyses: spectra, similarity, mutual information and integrated gradients."""

from qxai.analysis.attribution import integrated_gradients
from qxai.analysis.capture import capture_activations, capture_transformer
from qxai.analysis.claims import analysis_claims
from qxai.analysis.mutual_info import fdr_significant, gaussian_mi, ksg_mi, mutual_information_matrix
from qxai.analysis.similarity import gram_cosine, linear_cka, similarity_matrices
from qxai.analysis.spectrum import density_matrix, layer_spectrum, top_k_share_interval
from qxai.analysis.subjects import Subject, SubjectSource, load_subject

__all__ = [
    "Subject", "SubjectSource", "analysis_claims", "capture_activations", "capture_transformer",
    "density_matrix", "fdr_significant", "gaussian_mi", "gram_cosine", "integrated_gradients", "ksg_mi",
    "layer_spectrum", "linear_cka", "load_subject", "mutual_information_matrix", "similarity_matrices",
    "top_k_share_interval",
]  # fmt: skip
