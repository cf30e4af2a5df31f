# tomwerk: one entry point. `make demo` runs the main job, `make test` every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.SHELLFLAGS := -eu -o pipefail -c

ROOT  := $(CURDIR)
VENV  := $(ROOT)/.venv
STAMP := $(ROOT)/.lab/stamps
SCENARIO := lab

export PATH := $(VENV)/bin:$(PATH)
export CONTAINERS_CONF := $(ROOT)/lab/containers.conf
export TOMWERK_LAB_DIR := $(ROOT)/.lab
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export PY_COLORS := 1

.PHONY: help bootstrap image lab-up demo verify audit role upgrade-test lab-down lint unit heavy lab-test lab-test-steps test collection collection-converge rules readme sample-report bench lock clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP)/host-packages: lab/host-packages.txt lab/install-host-packages.sh
	@mkdir -p $(STAMP)
	lab/install-host-packages.sh
	@touch $@

$(VENV)/.installed: requirements.txt pyproject.toml
	@test -x $(VENV)/bin/python || $$(lab/find-python.sh) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	@touch $@

bootstrap: $(STAMP)/host-packages $(VENV)/.installed ## install controller packages and the pinned Python venv

image: bootstrap ## build the lab's Debian 12 and 13 base images (only when the recipe changed)
	lab/build-image.sh bookworm
	lab/build-image.sh trixie

lab-up: image ## create the lab hosts and provision them with playbooks/site.yml
	lab/forget-lost-hosts.sh $(SCENARIO)
	molecule create -s $(SCENARIO)
	molecule converge -s $(SCENARIO)

# The checks the demo and CI run: the compliance suite (any inventory) and the
# lab's end-to-end tests. One command, so the user's path is the tested path.
# Most checks wait (for a scrape, a mail, a timer): hosts are checked
# VERIFY_JOBS at a time, then the checks across hosts run alone.
VERIFY_JOBS ?= 4
VERIFY := tomwerk verify --inventory inventories/lab --out results --jobs $(VERIFY_JOBS) \
	--suite tests/compliance --suite tests/lab

verify: ## run every check against the running lab; write the evidence report (exit 1 on a failed check)
	@rc=0; $(VERIFY) || rc=$$?; \
	if [ -e results/latest/result.json ]; then \
	  tomwerk report --result results/latest/result.json --lang de --format html,md,pdf; \
	  tomwerk report --result results/latest/result.json --lang en --format html,md,pdf; \
	fi; \
	echo; \
	echo "Compliance results (JUnit):  $(ROOT)/results/latest/junit.xml"; \
	echo "Machine-readable result:     $(ROOT)/results/latest/result.json"; \
	echo "Evidence report:             $(ROOT)/results/latest/report.de.pdf (.html, .md; English: report.en.*)"; \
	if [ $$rc -ne 0 ] && [ -e results/latest/summary.txt ]; then \
	  echo "Some checks failed: the report above says which, on which host, and what to do."; \
	fi; \
	exit $$rc

audit: ## check mode against the running lab: what a converge would change (changes nothing)
	tomwerk audit --inventory inventories/lab --out results

demo: lab-up ## main job: install, build and provision the lab, check it; the lab stays up
	@rc=0; $(MAKE) --no-print-directory verify || rc=$$?; \
	echo; \
	echo "The lab is up and provisioned: $$(podman ps --filter network=tomwerk-lab --format '{{.Names}}' | xargs)"; \
	echo "Prometheus:                  https://10.231.0.15:9090 (internal CA: .lab/pki/ca.crt; alerts: podman exec monitor1 cat /var/lib/tomwerk-alert-sink/alerts.jsonl)"; \
	echo "Look around:                 podman exec -it web1 bash"; \
	echo "Audit drift (check mode):    make audit"; \
	echo "Tear it down:                make lab-down"; \
	echo; \
	cat results/latest/summary.txt 2>/dev/null || echo "tomwerk verify did not complete: see the output above"; \
	exit $$rc

# The contributor's loop: one role on one lab host in minutes. The role's tag
# (its input checks for every host run too), then its checks and the host's probe.
role: bootstrap ## converge one ROLE on one lab HOST (default: its first) and run its checks: make role ROLE=ssh_access
	@test -n "$(ROLE)" || { echo "usage: make role ROLE=<role> [HOST=<lab host>]"; exit 2; }
	@host="$(HOST)"; \
	if [ -z "$$host" ]; then host=$$(python -c 'import sys; from tomwerk.inventory import Inventory; \
	  print((Inventory("inventories/lab").hosts_with_role(sys.argv[1]) or [""])[0])' $(ROLE)); fi; \
	test -n "$$host" || { echo "no lab host carries role $(ROLE) (playbooks/site.yml)"; exit 2; }; \
	suites="--suite tests/compliance/test_probes.py"; \
	if [ -e tests/compliance/test_$(ROLE).py ]; then suites="--suite tests/compliance/test_$(ROLE).py $$suites"; fi; \
	echo "➜ role $(ROLE) on $$host: converge, $$(date -u +%T)"; \
	ansible-playbook -i inventories/lab playbooks/site.yml --limit $$host --tags $(ROLE) && \
	echo "➜ role $(ROLE) on $$host: checks, $$(date -u +%T)" && \
	tomwerk verify --inventory inventories/lab --hosts $$host --out results $$suites

# Not in CI (it takes about as long as CI). The lab starts as an older fleet:
# every host on Debian 12. Each is upgraded in place to 13 and rebooted, the
# lab is converged again, and every check must pass. The lab stays up, on 13.
upgrade-test: image ## Debian 12 -> 13 in place: an all-12 lab, upgraded, converged again, verified
	-molecule destroy -s $(SCENARIO)
	@echo "➜ upgrade-test: an all-Debian-12 lab, $$(date -u +%T)"
	TOMWERK_LAB_NEW_RELEASE=bookworm $(MAKE) --no-print-directory lab-up
	@echo "➜ upgrade-test: upgrade every host to Debian 13, $$(date -u +%T)"
	lab/upgrade-to-trixie.sh
	@echo "➜ upgrade-test: converge again, $$(date -u +%T)"
	molecule converge -s $(SCENARIO)
	@echo "➜ upgrade-test: verify, $$(date -u +%T)"
	@$(MAKE) --no-print-directory verify
	@echo "➜ upgrade-test: done, $$(date -u +%T)"

lab-down: ## destroy the lab hosts and network
	-molecule destroy -s $(SCENARIO)
	-podman network rm tomwerk-lab

lint: bootstrap ## yamllint, ansible-lint (production profile), ruff
	yamllint --strict .
	ansible-lint --profile production
	ruff check .
	ruff format --check .

# Fast, and needs only the venv: no podman, no Chromium. The tests that need a
# controller package or run Ansible end to end are marked heavy.
unit: $(VENV)/.installed ## tests that need no hosts and no controller packages (catalogue, roles, filters, exporter, ...)
	pytest tests/unit -q -n auto -m "not heavy"

heavy: bootstrap ## the unit tests that need controller packages or run Ansible (restic, promtool, Chromium, bad input)
	pytest tests/unit -q -n auto -m heavy

# CI stops everything at 90 minutes and shows only the log's tail: the lab run
# stops itself earlier, so the tail still says which step took the time.
LAB_TEST_TIMEOUT ?= 75m

lab-test: image ## the whole lab: create, converge, idempotence, audit (check mode), verify, destroy
	@rc=0; timeout --kill-after=2m $(LAB_TEST_TIMEOUT) $(MAKE) --no-print-directory lab-test-steps 2>&1 \
	  | $(VENV)/bin/python lab/phase-times.py || rc=$$?; \
	if [ $$rc -eq 124 ]; then echo "lab-test stopped after LAB_TEST_TIMEOUT=$(LAB_TEST_TIMEOUT)"; fi; \
	molecule destroy -s $(SCENARIO) >/dev/null 2>&1 || true; \
	cat results/latest/summary.txt 2>/dev/null || echo "tomwerk verify did not complete"; \
	exit $$rc

# Molecule makes the lab and proves idempotence; then the user's own commands
# run against it: the audit must find no drift, verify no failed check. The
# "➜ step: Executing" lines are for lab/phase-times.py. `--destroy never` also
# skips the sequence's first destroy, and Molecule's state outlives the
# containers (a reboot, a machine restored from a snapshot): destroy first.
lab-test-steps:
	@rm -rf results/latest
	molecule destroy -s $(SCENARIO)
	molecule test -s $(SCENARIO) --destroy never
	@rc=0; \
	echo "➜ audit: Executing"; $(MAKE) --no-print-directory audit || rc=$$?; echo "➜ audit: Executed"; \
	echo "➜ collection: Executing"; $(MAKE) --no-print-directory collection-converge || rc=$$?; echo "➜ collection: Executed"; \
	echo "➜ verify: Executing"; $(MAKE) --no-print-directory verify || rc=$$?; echo "➜ verify: Executed"; \
	exit $$rc

test: lint unit heavy lab-test ## every test (what CI runs)

COLLECTION_HOST ?= web1
collection: bootstrap ## build the collection tomwerk.toms, install it outside the tree, syntax-check a FQCN-only playbook
	lab/collection.sh check

collection-converge: bootstrap ## converge one lab host (COLLECTION_HOST=web1) from the installed collection; must change nothing
	lab/collection.sh converge $(COLLECTION_HOST)

rules: bootstrap ## promtool: check and unit-test the alert rules (also part of `make heavy`)
	promtool check rules roles/*/files/alerts/*.yml
	cd tests/promtool && promtool test rules *.test.yml

readme: bootstrap ## regenerate the README's TOM map and each role's README (argument_specs, meta, toms.yml)
	tomwerk catalogue sync-tests
	tomwerk catalogue update-readme

# The sample report in docs/ comes from a real run: the demo's, unless RESULT names another.
RESULT ?= results/latest/result.json

sample-report: bootstrap ## docs/sample-report.md, .png and .pdf (English) from RESULT (default: the demo's result)
	tomwerk report --result $(RESULT) --lang en --format md,png,pdf --out docs --name sample-report

bench: bootstrap ## benchmarks: tomwerk-anonymize vs anonip; the exporter's scrape time, RSS and burst; verify at 8 and 16 hosts (needs the lab up)
	$(VENV)/bin/python bench/anonymize_bench.py
	$(VENV)/bin/python bench/exporter_bench.py
	$(VENV)/bin/python bench/verify_scaling.py
	$(VENV)/bin/python bench/rsyslog_pipeline_bench.py

lock: ## re-pin requirements.txt from requirements.in in a fresh venv
	rm -rf $(ROOT)/.lock-venv
	$$(lab/find-python.sh) -m venv $(ROOT)/.lock-venv
	$(ROOT)/.lock-venv/bin/pip install --quiet -r requirements.in
	{ echo "# Generated from requirements.in by 'make lock' (pip freeze of a fresh venv). Do not edit by hand."; \
	  $(ROOT)/.lock-venv/bin/pip freeze; } > requirements.txt
	rm -rf $(ROOT)/.lock-venv

clean: lab-down ## remove the lab, the venv and generated files
	rm -rf $(VENV) $(ROOT)/.lab $(ROOT)/results
