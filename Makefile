# dijk: the front door. `make` builds build/dijk; `make run` starts a demo;
# `make test` runs every test. Each target installs what is missing first.

BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
PYTHON ?= /usr/bin/python3

.PHONY: all deps deps-test build run test test-unit test-integration \
	test-asan fuzz fuzz-smoke bench format lint clean

all: build

deps:
	@bash scripts/deps.sh

deps-test:
	@bash scripts/deps.sh --test

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	@bash scripts/demo.sh $(BUILD)/dijk

test: deps-test
	@bash scripts/test.sh

test-asan: deps-test
	@bash scripts/test.sh --asan

fuzz: deps-test
	@bash scripts/fuzz.sh long

fuzz-smoke: deps-test
	@bash scripts/fuzz.sh smoke

bench: build deps-test
	@bash bench/smtp/run.sh $(BUILD)/dijk
	@bash bench/imap/run.sh $(BUILD)/dijk
	@bash bench/webmail/run.sh $(BUILD)/dijk
	@bash bench/outbound/run.sh $(BUILD)/dijk

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'fuzz/*.c')

lint:
	@bash scripts/lint.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
