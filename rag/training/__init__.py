"""Training the span reader (``rag train-reader``): data, hard negatives, resumable training,
calibration and the model card.  Kept apart from ``rag.reading`` (inference), which never
imports it."""
