#!/bin/bash
# Everything measured on the new reader (and the shipped one where the held-out wording changed).
cd /work/main
RUN=/work/runs/reader-19b; R=$RUN/model; O=$RUN/eval; mkdir -p $O
P=.venv/bin/python; RAG=.venv/bin/rag
$P eval/reader/techdocs_heldout.py --reader $R --out $O/techdocs_heldout_new.json
$P eval/reader/techdocs_heldout.py --reader rag/models/reader --out $O/techdocs_heldout_shipped.json
RAG_READER=$R $RAG eval eval/realdocs/gold.jsonl --index /tmp/realdocs-index --json --report $O/realdocs > $O/realdocs.json
RAG_READER=$R $RAG eval eval/seed_gold.jsonl --index /tmp/seed-index --json > $O/seed.json
RAG_READER=$R $RAG eval --squad ../shared/data/squad-v1.1/dev-v1.1.json --mode reader --limit 2000 --seed 0 --json > $O/v1.json
RAG_READER=$R $RAG eval --squad ../shared/data/squad-v2.0/dev-v2.0.reconstructed.json --mode reader --limit 2000 --seed 0 --json > $O/v2.json
RAG_READER=$R $P eval/paraphrase/stability.py --out $O/stability.json > $O/stability.log 2>&1
RAG_READER=$R $RAG eval --squad ../shared/data/squad-v1.1/dev-v1.1.json --mode open --limit 1000 --seed 0 --json > $O/open.json
$RAG eval eval/realdocs/gold.jsonl --index /tmp/realdocs-index --json --report $O/realdocs-shipped > $O/realdocs_shipped.json
$RAG eval eval/seed_gold.jsonl --index /tmp/seed-index --json > $O/seed_shipped.json
echo AFTER_EVAL_DONE
