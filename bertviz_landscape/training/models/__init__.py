"""Models: where pretrained weights come from, how θ0 is built, and the LightningModule."""

from bertviz_landscape.training.models.classifier import GlueClassifier, OptimRequest
from bertviz_landscape.training.models.initial import build_initial_model, load_tokenizer
from bertviz_landscape.training.models.source import resolve_model_source

__all__ = ["resolve_model_source", "build_initial_model", "load_tokenizer", "GlueClassifier", "OptimRequest"]
