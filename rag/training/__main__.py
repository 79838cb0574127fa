"""``python -m rag.training ...``: the same as ``rag train-reader ...``."""
from rag.training.train import main

main()
