# Convenience targets; the README's two commands are the supported entry points.
.PHONY: bootstrap test demo lint bench soak audit proof
bootstrap:
	bash scripts/bootstrap.sh
test:
	bash scripts/test.sh
demo:
	bash scripts/demo.sh
lint:
	.venv/bin/ruff check agent tests benchmarks scripts roles playbooks inventory && .venv/bin/mypy
bench:
	.venv/bin/python benchmarks/bench_sim.py && .venv/bin/python benchmarks/bench_agent.py
# 20 simulated trading days on a local droplet with seeded faults and PostgreSQL restarts (about 4 min).
soak:
	.venv/bin/python benchmarks/soak.py
# Security audit of a freshly provisioned droplet: Lynis, ssh-audit, secrets, service user (about 3 min).
audit:
	.venv/bin/python benchmarks/audit.py
# Both, one after the other (under 30 min); fails if either does.
proof:
	.venv/bin/python benchmarks/soak.py && .venv/bin/python benchmarks/audit.py
