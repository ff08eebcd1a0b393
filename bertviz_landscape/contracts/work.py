"""A stage's useful work: the matrix products its model passes ran, and the bytes of its memory-bound parts.

The places that run a model report each pass over a batch (`count_pass`) and each memory-bound
update (`count_bytes`) to the meter that is open (`metering()`; none open: they return at once);
pipeline/work.py turns a stage's `Tally` into the ``work`` entry of its record, and
benchmarks/roofline.py sets that against this host's limits.

Matrix-product FLOPs of one forward pass of a BERT-family classifier over a batch padded to
``s`` tokens (hidden ``h``, feed-forward ``f``, ``labels`` outputs), two FLOPs per multiply-add:

- per token and encoder layer run: the four attention projections and the feed-forward pair,
  ``2·(4·h² + 2·h·f)``;
- per sequence and layer: attention's QKᵀ and scores·V, ``2·2·s²·h``;
- per sequence, when the head runs: the pooler (CLS token only) and the classifier,
  ``2·(h² + h·labels)``.

A pass of kind ``train`` (forward, then backward to every weight) is 3× its forward (each
product's backward is two products of its size); ``hvp`` (a Hessian-vector product by double
backward or forward-over-reverse) is 9× (FlopCounterMode on the tiny model, both methods).
Attention is counted as its two products (the math path; a fused CPU kernel's backward also
recomputes QKᵀ, +½ of attention's forward — under 1 % of a pass at the demo's lengths).

Padded and real tokens are both counted: ``flops`` is what the kernels did (every batch padded
to its longest sequence), ``flops_unpadded`` the same products over the real tokens only
(``Σ n_i`` tokens, ``Σ n_i²`` attention pairs), so the padding's share is their difference.
The real-token counts stay on the batch's device until the entry is written (no device sync per
batch). Only models whose config names BERT's shapes (hidden_size, intermediate_size,
num_hidden_layers) are counted; a pass of another model is listed under ``uncounted``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

# matrix-product FLOPs of a pass of each kind, in units of its forward pass
PASS_MULTIPLIER = {"forward": 1, "train": 3, "hvp": 9}

# fp32 bytes moved per parameter (read + written) by each memory-bound part
ADAMW_BYTES = 28  # read θ, g, m, v; write θ, m, v (4 bytes each)
WEIGHT_SET_BYTES = 8  # p ← centre: read 4, write 4 (a point with no direction used)
WEIGHT_AXPY_BYTES = 12  # p = c + α·δ or p += β·δ: read two, write one


@dataclass(frozen=True)
class Shape:
    """The shapes a pass's matrix products depend on."""

    hidden: int
    intermediate: int
    layers: int
    labels: int

    @classmethod
    def of(cls, model: torch.nn.Module) -> Shape | None:
        config = getattr(model, "config", None)
        try:
            return cls(
                int(config.hidden_size),
                int(config.intermediate_size),
                int(config.num_hidden_layers),
                int(getattr(config, "num_labels", 2) or 2),
            )
        except (AttributeError, TypeError):
            return None


def pass_flops(
    shape: Shape,
    tokens: int,
    sequences: int,
    attention_pairs: int,
    layers: tuple[int, int] | None = None,
    head: bool = True,
) -> tuple[int, int]:
    """(matrix-product FLOPs, of which attention's) of one forward pass over `sequences` sequences
    of `tokens` tokens in all (Σ s_i² = `attention_pairs`), running encoder layers
    ``layers = (first, stop)`` (all by default) and the pooler + classifier when `head`."""
    h, f = shape.hidden, shape.intermediate
    first, stop = layers if layers is not None else (0, shape.layers)
    run = max(0, stop - first)
    attention = run * 4 * attention_pairs * h
    total = run * tokens * 2 * (4 * h * h + 2 * h * f) + attention
    if head:
        total += sequences * 2 * (h * h + h * shape.labels)
    return total, attention


@dataclass
class _Group:
    """The passes of one (shape, kind, layers, head): padded counts as ints, real ones as they come
    (tensors on the batch's device, summed without a device sync until the entry is written)."""

    passes: int = 0
    sequences: int = 0
    padded_tokens: int = 0
    padded_pairs: int = 0
    tokens: torch.Tensor | int = 0
    pairs: torch.Tensor | int = 0


@dataclass(eq=False)  # each meter is itself (the open list removes it by identity)
class Tally:
    """What one stage ran: passes over batches by (model shape, kind, layers run), bytes by part."""

    groups: dict = field(default_factory=dict)
    bytes: Counter = field(default_factory=Counter)
    uncounted: Counter = field(default_factory=Counter)

    def add_pass(
        self,
        shape: Shape | None,
        mask: torch.Tensor,
        kind: str = "forward",
        layers: tuple[int, int] | None = None,
        head: bool = True,
        name: str = "",
    ) -> None:
        if shape is None:
            self.uncounted[name or "model"] += 1
            return
        if kind not in PASS_MULTIPLIER:
            raise ValueError(f"unknown pass kind {kind!r}; expected one of {sorted(PASS_MULTIPLIER)}")
        group = self.groups.setdefault((shape, kind, layers, head), _Group())
        batch, width = (int(n) for n in mask.shape)
        real = mask.detach().sum(dim=1, dtype=torch.int64)
        group.passes += 1
        group.sequences += batch
        group.padded_tokens += batch * width
        group.padded_pairs += batch * width * width
        group.tokens = group.tokens + real.sum()
        group.pairs = group.pairs + (real * real).sum()

    def _sum(self, fn) -> int:
        return int(sum(fn(key, g) for key, g in self.groups.items()))

    @staticmethod
    def _flops(key, group: _Group, padded: bool, attention_only: bool = False) -> int:
        shape, kind, layers, head = key
        tokens, pairs = (
            (group.padded_tokens, group.padded_pairs) if padded else (int(group.tokens), int(group.pairs))
        )
        total, attention = pass_flops(shape, tokens, group.sequences, pairs, layers, head)
        return PASS_MULTIPLIER[kind] * (attention if attention_only else total)

    @property
    def flops(self) -> int:
        """Matrix-product FLOPs as the kernels ran them (every batch padded to its longest sequence)."""
        return self._sum(lambda k, g: self._flops(k, g, padded=True))

    @property
    def flops_unpadded(self) -> int:
        """The same products over the real tokens only."""
        return self._sum(lambda k, g: self._flops(k, g, padded=False))

    @property
    def attention_flops(self) -> int:
        return self._sum(lambda k, g: self._flops(k, g, padded=True, attention_only=True))

    @property
    def tokens(self) -> int:
        return self._sum(lambda k, g: int(g.tokens))

    @property
    def padded_tokens(self) -> int:
        return self._sum(lambda k, g: g.padded_tokens)

    @property
    def sequences(self) -> int:
        return self._sum(lambda k, g: g.sequences)

    @property
    def passes(self) -> dict[str, int]:
        out: Counter = Counter()
        for (_, kind, _, _), g in self.groups.items():
            out[kind] += g.passes
        return dict(sorted(out.items()))

    def entry(self) -> dict:
        """The ``work`` entry of a stage record (plain JSON values)."""
        return {
            "flops": self.flops,
            "flops_unpadded": self.flops_unpadded,
            "attention_flops": self.attention_flops,
            "bytes": int(sum(self.bytes.values())),
            "bytes_by_part": dict(sorted(self.bytes.items())),
            "tokens": self.tokens,
            "padded_tokens": self.padded_tokens,
            "sequences": self.sequences,
            "passes": self.passes,
            **({"uncounted": dict(self.uncounted)} if self.uncounted else {}),
        }


_OPEN: list[Tally] = []  # the meters open, innermost last (a plain list: threads count too)


@contextlib.contextmanager
def metering() -> Iterator[Tally]:
    """Count every pass and memory-bound update reported inside the block into a new Tally."""
    tally = Tally()
    _OPEN.append(tally)
    try:
        yield tally
    finally:
        _OPEN.remove(tally)


def count_pass(
    model: torch.nn.Module,
    attention_mask: torch.Tensor,
    kind: str = "forward",
    layers: tuple[int, int] | None = None,
    head: bool = True,
) -> None:
    """One pass of `model` over a batch with this attention mask (batch × padded length)."""
    if not _OPEN:
        return
    shape = Shape.of(model)
    for tally in _OPEN:
        tally.add_pass(shape, attention_mask, kind, layers, head, type(model).__name__)


def count_bytes(part: str, nbytes: int) -> None:
    """`nbytes` read + written by a memory-bound part (e.g. "adamw", "weight update")."""
    for tally in _OPEN:
        tally.bytes[part] += int(nbytes)


def metering_open() -> bool:
    return bool(_OPEN)
