#!/usr/bin/env bash
# The CPU demo (make demo): pretrained vs from-scratch MiniLM on MRPC (+ SST-2 for δ2), 1D curves,
# 2D train/dev surfaces on the paper's axes, trajectories, the analyses, figures, W&B media and
# the claim-by-claim report. Re-running skips finished stages. Settings: conf/demo.yaml.
set -euo pipefail
OUT=${OUT:-outputs/demo}
bertviz-demo output_dir="$OUT" "$@"
echo "report: $OUT/report.html ($OUT/report.md); figures: $OUT/figures/"
