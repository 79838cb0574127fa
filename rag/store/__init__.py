"""Stage 4: persistent storage of passages, vectors (FAISS) and the BM25 index."""
