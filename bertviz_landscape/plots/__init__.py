"""The paper's figures, one module per figure kind; plain functions from files to matplotlib figures.

    curves.loss_curves          1D curves, pretrained vs scratch (training loss + dev error)
    surface2d.surface_contours  2D train-loss and dev-error contours with the trajectory
    surface3d.surface_3d / interactive_html   3D views (mplot3d; Plotly HTML)
    layers.layer_panels         relative change, roll-back, per-layer curves
    longtrain.dev_per_epoch     dev metric per epoch
    curvature.curvature_numbers basin width/area, Hessian numbers
    results.draw_all            every figure a results directory supports (drawn by `bertviz-plot`)

`style` holds the one style (Agg, Okabe–Ito colours, viridis/cividis, the paper's axis names)
and `save_figure` (PNG + PDF, atomic). Nothing here talks to W&B (see bertviz_landscape.publish.wandb_media).
"""
