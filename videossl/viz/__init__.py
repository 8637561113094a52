"""See what the model sees and learns (issue 12).

- ``views``: ``videossl show views RECIPE`` -- a PNG grid and a GIF of the views a method's sampler and
  augmentation produce, labelled with view name, frame indices and time span; audio as spectrograms.
- ``attention``: ``videossl show attention ENCODER VIDEO`` -- last-layer CLS attention per head (ViTs) or a
  class-agnostic activation map (CNNs), overlaid on the frames.
- ``features``: ``videossl features ENCODER DATASET`` -- embeddings of every video to ``.npy`` + CSV, t-SNE plot.
- ``report``: ``videossl report RUN_DIR`` -- one static HTML page of a run.

``render`` holds the drawing helpers they share (un-normalising clips, heat-map overlays, GIF writing).
"""
