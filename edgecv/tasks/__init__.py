"""Task runtime: Classifier, Detector, Segmenter, Embedder and Gallery on top of :class:`edgecv.Model`."""
