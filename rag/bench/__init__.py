"""`rag bench`: build throughput, latency (in-process and HTTP), and scale to 10^6 passages.

Results go to eval/bench/*.json and *.png and are rendered into eval/BENCHMARKS.md.
Benchmarks are not tests: nothing in CI times anything.
"""
