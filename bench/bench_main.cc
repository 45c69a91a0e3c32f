// bench_main.cc - the one main() of build/bench_micro; every
// bench/bench_*.cc registers its BM_<Module>_<Case> benchmarks.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
