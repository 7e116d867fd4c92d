# Convenience targets; the README's two commands are the supported entry points.
.PHONY: bootstrap test demo lint bench
bootstrap:
	bash scripts/bootstrap.sh
test:
	bash scripts/test.sh
demo:
	bash scripts/demo.sh
lint:
	.venv/bin/ruff check agent tests benchmarks && .venv/bin/mypy
bench:
	.venv/bin/python benchmarks/bench_sim.py && .venv/bin/python benchmarks/bench_agent.py
