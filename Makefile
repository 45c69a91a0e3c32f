# mxring - one non-recursive Makefile.
#   make                 build/mxringd and build/mxlog
#   make run             build and run with etc/mxringd.conf in the foreground
#   make test            build and run every test (unit, TSan stress, e2e, ASan+UBSan)
#   make bench-build     build/mxbench and build/bench_micro
#   make deb             build/mxring_<version>_amd64.deb (pkg/pkg.mk; make man: the pages)
#   SANITIZE=address,undefined|thread  build into build-<sanitizers>/
#   V=1                  show full commands

CC       ?= gcc
CXX      ?= g++
PYTHON   ?= python3
SANITIZE ?=
comma    := ,
empty    :=
space    := $(empty) $(empty)

ifeq ($(SANITIZE),)
BUILD    ?= build
SANFLAGS :=
MALLOC   := -ljemalloc
else
BUILD    ?= build-$(subst $(comma),-,$(SANITIZE))
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
MALLOC   :=
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

OPT      ?= -O2
CFLAGS   := -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wformat=2 \
            -Wstrict-prototypes -Wmissing-prototypes -fno-strict-aliasing \
            -MMD -MP -Icore -Ilog -Inet $(SANFLAGS) $(EXTRA_CFLAGS)
CXXFLAGS := -std=c++17 $(OPT) -g -Wall -Wextra -Werror -MMD -MP -Icore -Ilog -Inet \
            $(SANFLAGS)
LDFLAGS  := $(SANFLAGS)
LIBS     := -luring -lpthread -lz -lcrypt -lpsl -lm

# TLS units compile against BoringSSL only (never OpenSSL's headers): the
# objects that include them get $(SSL_INC) as a private target-specific flag
# below (and in bench/mxbench.mk); nothing else sees those headers. The
# library folder follows the target's multiarch triplet.
MULTIARCH  := $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || $(CC) -print-multiarch)
SSL_INC    := -I/usr/include/android
SSL_LIBDIR := /usr/lib/$(MULTIARCH)/android
SSL_LIB    := -L$(SSL_LIBDIR) -Wl,-rpath,$(SSL_LIBDIR) -lssl -lcrypto

LIB_SRCS := $(sort $(wildcard core/*.c log/*.c net/*.c))
LIB_SRCS := $(filter-out net/main.c,$(LIB_SRCS))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libmxring.a

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

all: $(BUILD)/mxringd $(BUILD)/mxringctl

# The BoringSSL users of core/ log/ net/ tests/ ("private": not inherited by
# the library objects a test binary depends on).
$(BUILD)/net/tls.o $(BUILD)/tests/test_tls: private CFLAGS += $(SSL_INC)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.cc
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) $(CXXFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/mxringd: $(BUILD)/net/main.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(SSL_LIB) $(MALLOC)

$(BUILD)/mxringctl: $(BUILD)/tools/mxringctl.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(SSL_LIB)

# test_session_authmem wraps malloc and free (an allocation that fails, a
# buffer wiped before it is freed).
$(BUILD)/tests/test_session_authmem: TEST_LDFLAGS = -Wl,--wrap=malloc,--wrap=free

# An LD_PRELOAD shim for tests/e2e/test_materialize.py (O_TMPFILE or the
# naming of an unnamed file made to fail); no sanitizer flags: the ASan
# server is started with its runtime first in LD_PRELOAD.
SHIM := $(BUILD)/tests/shim_notmpfile.so

$(SHIM): tests/e2e/shim_notmpfile.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(LIB) -lcmocka $(LIBS) $(SSL_LIB) $(TEST_LDFLAGS)

-include $(LIB_OBJS:.o=.d) $(BUILD)/net/main.d $(BUILD)/tools/mxringctl.d $(UNIT_BINS:=.d)

deps:
	$(Q)scripts/deps.sh build

deps-test:
	$(Q)scripts/deps.sh test

run: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/mxringd
	$(Q)mkdir -p var
	exec $(BUILD)/mxringd -c etc/mxringd.conf

unit: $(UNIT_BINS) $(SHIM)

# The whole suite: normal build, TSan ring stress, ASan+UBSan build; one summary.
# scripts/check-tools.sh first names any tool or package a suite would miss.
test: deps-test
	$(Q)scripts/check-tools.sh
	$(Q)$(MAKE) --no-print-directory all unit mxbench bench-micro
	$(Q)$(MAKE) --no-print-directory SANITIZE=thread unit
	$(Q)$(MAKE) --no-print-directory SANITIZE=address,undefined all unit
	$(Q)PYTHON=$(PYTHON) $(PYTHON) scripts/run-tests.py

# Benchmarks: the micro suite, then the side-by-side comparison with Postfix.
bench-build: bench-micro mxbench $(BUILD)/mxringd

bench: deps-bench
	$(Q)$(MAKE) --no-print-directory bench-build
	$(BUILD)/bench_micro $(BENCH_ARGS)
	scripts/compare.sh

deps-bench:
	$(Q)scripts/deps.sh bench

# The layout of .clang-format: `make format` applies it, `make format-check`
# (run by scripts/run-tests.py) names every file that drifts from it.
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

format:
	$(Q)clang-format -i $(FORMAT_FILES)

format-check:
	$(Q)clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf build build-*

.PHONY: all deps deps-test deps-bench run unit test bench bench-build clean format format-check

# Fragments owned by their folders (fuzzing, benchmarks, tools, packaging).
-include tests/fuzz/fuzz.mk
-include tools/mxlog/mxlog.mk
-include pkg/pkg.mk
-include bench/bench.mk
-include bench/mxbench.mk
