"""The paper's figures, one module per figure kind; plain functions from files to figures, each
returning (matplotlib figure, caption).

    curves.loss_curves          1D curves, pretrained vs scratch (training loss + dev error)
    surface2d.surface_contours  2D train-loss and dev-error contours with the trajectory
    surface3d.surface_3d / interactive_html   3D views (mplot3d; Plotly HTML)
    layers.layer_panels         relative change, roll-back, per-layer curves
    longtrain.dev_per_epoch     dev metric per epoch
    curvature.curvature_numbers basin width/area, Hessian numbers
    basins.interpolation_curves the loss on the line between two seeds' θ1
    catalogue.FIGURES           the one catalogue: every figure kind (surface and analysis) and its drawer
    results.draw_all            every figure a results directory supports (drawn by `bertviz-plot`)

`style` holds the one style (Agg, Okabe–Ito colours, viridis/cividis, the paper's axis names)
and `save_figure` (PNG + PDF, atomic). Nothing here talks to W&B (see bertviz_landscape.publish.wandb_media).
"""
