# bench.mk - micro-benchmarks (Google Benchmark 1.7.1, C++17): every
# bench/bench_*.cc goes into one binary $(BUILD)/bench_micro, whose main()
# is BENCHMARK_MAIN() in bench/bench_main.cc. Included by the top Makefile.
#   make bench-micro       build $(BUILD)/bench_micro
#   make bench-micro-run   run it (BENCH_ARGS: repetitions, filter, ...)

BENCH_SRCS := $(sort $(wildcard bench/bench_*.cc))
BENCH_OBJS := $(BENCH_SRCS:%.cc=$(BUILD)/%.o)
BENCH_BIN  := $(BUILD)/bench_micro
# Debian's libspdlog-dev is a compiled, shared spdlog on the external fmt
# (pkg-config --cflags spdlog); the defines must match the library's.
BENCH_DEFS := -DSPDLOG_SHARED_LIB -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL
BENCH_LIBS := -lbenchmark -lspdlog -lfmt -pthread
BENCH_ARGS ?= --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

$(BENCH_OBJS): CXXFLAGS += $(BENCH_DEFS)

$(BENCH_BIN): $(BENCH_OBJS) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(LDFLAGS) -o $@ $(BENCH_OBJS) $(LIB) $(BENCH_LIBS) $(LIBS) $(SSL_LIB)

bench-micro: $(BENCH_BIN)

bench-micro-run: $(BENCH_BIN)
	$(BENCH_BIN) $(BENCH_ARGS)

-include $(BENCH_OBJS:.o=.d)

.PHONY: bench-micro bench-micro-run
