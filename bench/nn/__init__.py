"""Neural pieces shared by the native models: the encoder-decoder backbone and constrained beam search."""
