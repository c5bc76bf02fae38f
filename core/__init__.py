"""The framework-neutral core both implementations stand on: datasets and their verification (``datasets``), the
seeded stratified split and training-set normalisation (``split``), noise (``noise``), the epoch order
(``order``), recipes (``configs``), flags and numeric ranges (``flags``, ``ranges``), run folders (``runs``),
figures (``plots``), image loading (``preprocess``), image metrics and classical denoisers, the precision a
machine computes fast (``precision``) and the constants both twins of an architecture share (``architectures``).

It needs torch, numpy, scikit-learn and scikit-image, never Lightning or Keras (a contract in pyproject.toml):
``lightning_impl`` and ``keras_ref`` both import from here, and neither imports the other."""
