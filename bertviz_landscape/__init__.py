"""bertviz_landscape: the loss landscape of BERT fine-tuning vs training from scratch.

Re-creates "Visualizing and Understanding the Effectiveness of BERT" (Hao et al., EMNLP 2019)
as a Hydra + PyTorch Lightning tool. See README.md and ../shared/DESIGN.md.
"""

__version__ = "0.1.0"
