# The two commands of the README. Both install what is missing first.
.PHONY: demo test chaos

## demo: run the whole system locally on http://127.0.0.1:8080 until Ctrl-C
demo:
	@bash scripts/demo.sh

## test: run every test (Rust, end-to-end on real NATS and PostgreSQL, web)
test:
	@bash scripts/test.sh

## chaos: the long runs of the reliability suite (every fault, minutes each); not part of `make test`
chaos:
	@bash scripts/chaos.sh
