"""Tiny random sequence classifiers of every supported architecture (hidden 32, 2 blocks).

Built locally from each config class on the MiniLM's vocabulary (its tokenizer is saved beside
each model), so `model.name_or_path=<dir>` works offline. No tests here.
"""

from __future__ import annotations

from pathlib import Path

import transformers as T

from bertviz_landscape.training.models.initial import load_tokenizer

ARCHS = ("bert", "roberta", "xlm-roberta", "distilbert", "electra", "albert", "deberta-v2", "modernbert")
# the number of transformer blocks the layer map must list (ALBERT: its one shared parameter group)
BLOCKS = {a: 2 for a in ARCHS} | {"albert": 1}
# the layers between the blocks and the head ("pooler") each architecture has
HAS_POOLER = {"bert": True, "albert": True, "deberta-v2": True, "modernbert": True}


def tiny_config(arch: str, num_labels: int = 2):
    tok = load_tokenizer("all-minilm-l6-v2")
    ids = {
        "vocab_size": tok.vocab_size,
        "pad_token_id": tok.pad_token_id,
        "num_labels": num_labels,
        "max_position_embeddings": 128,
        "initializer_range": 0.2,  # large enough weights that the loss is far from log(num_labels)
    }
    bert_like = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    if arch == "bert":
        return T.BertConfig(**ids, **bert_like)
    if arch == "roberta":  # roberta-base's single token type
        return T.RobertaConfig(**ids, **bert_like, type_vocab_size=1)
    if arch == "xlm-roberta":
        return T.XLMRobertaConfig(**ids, **bert_like, type_vocab_size=1)
    if arch == "distilbert":
        return T.DistilBertConfig(**ids, dim=32, n_layers=2, n_heads=2, hidden_dim=64)
    if arch == "electra":  # embedding_size != hidden: the embeddings_project between them
        return T.ElectraConfig(**ids, **bert_like, embedding_size=16)
    if arch == "albert":
        return T.AlbertConfig(**ids, **bert_like, embedding_size=16)
    if arch == "deberta-v2":  # v3-style: relative attention, no token types
        return T.DebertaV2Config(
            **ids,
            **bert_like,
            relative_attention=True,
            pos_att_type=["p2c", "c2p"],
            position_biased_input=False,
            type_vocab_size=0,
        )
    if arch == "modernbert":
        special = {"bos_token_id": tok.cls_token_id, "eos_token_id": tok.sep_token_id}
        special |= {"cls_token_id": tok.cls_token_id, "sep_token_id": tok.sep_token_id}
        return T.ModernBertConfig(
            **ids, **bert_like, **special, global_attn_every_n_layers=2, local_attention=16
        )
    raise KeyError(arch)


def tiny_model(arch: str, seed: int = 0, num_labels: int = 2):
    import torch

    torch.manual_seed(seed)
    return T.AutoModelForSequenceClassification.from_config(tiny_config(arch, num_labels)).eval()


def save_tiny(arch: str, path: Path, seed: int = 0) -> Path:
    """A saved tiny `arch` with the MiniLM tokenizer: stands in for a pretrained model."""
    tiny_model(arch, seed).save_pretrained(str(path))
    load_tokenizer("all-minilm-l6-v2").save_pretrained(str(path))
    return path
