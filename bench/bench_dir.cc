// bench_dir.cc - recipient directory benchmarks: loading a 1M-line users
// file and looking addresses up (hit and miss) in a 1M-entry snapshot.
// Single-threaded; the generated file lives in /tmp and is made once per run.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dir.h"

namespace {

constexpr unsigned kEntries = 1000000;
constexpr size_t kKeyStride = 64;      // bytes per probe key (addresses < 48)
constexpr const char *kPath = "/tmp/mxring_bench_dir_1m.users";

// bench_addr - the i-th generated address ("no-" prefixed when absent);
// upper-cased domain when upper, as senders write it.
std::string bench_addr(unsigned i, bool absent, bool upper)
{
    char buf[96];
    std::snprintf(buf, sizeof buf, upper ? "%sfirst.last%u@Example%u.ORG"
                                         : "%sfirst.last%u@example%u.org",
                  absent ? "no-" : "", i, i % 100);
    return buf;
}

// bench_users_file - write the 1M-line users file (fake $6$ hashes) once.
const char *bench_users_file()
{
    static bool done;
    if (done)
        return kPath;
    FILE *f = std::fopen(kPath, "w");
    if (!f) {
        std::perror(kPath);
        std::exit(1);
    }
    static const char b64[] =
        "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    uint64_t x = 88172645463325252ULL;
    for (unsigned i = 0; i < kEntries; i++) {
        char hash[16 + 1 + 86 + 1];
        for (size_t k = 0; k + 1 < sizeof hash; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            hash[k] = k == 16 ? '$' : b64[x & 63];
        }
        hash[sizeof hash - 1] = 0;
        std::fprintf(f, "%s:$6$%s\n", bench_addr(i, false, false).c_str(), hash);
    }
    if (std::fclose(f) != 0) {
        std::perror(kPath);
        std::exit(1);
    }
    done = true;
    return kPath;
}

// bench_dir - the shared 1M-entry snapshot used by the lookup benchmarks.
const struct dir *bench_dir()
{
    static struct dir *d;
    if (!d) {
        char err[512];
        d = dir_load(bench_users_file(), nullptr, nullptr, nullptr, err, sizeof err);
        if (!d) {
            std::fprintf(stderr, "dir_load: %s\n", err);
            std::exit(1);
        }
    }
    return d;
}

void BM_Dir_Load1M(benchmark::State &state)
{
    const char *path = bench_users_file();
    char err[512];
    for (auto _ : state) {
        struct dir *d = dir_load(path, nullptr, nullptr, nullptr, err, sizeof err);
        if (!d || dir_count(d) != kEntries) {
            state.SkipWithError(d ? "wrong entry count" : err);
            dir_free(d);
            break;
        }
        state.PauseTiming();
        dir_free(d);
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * kEntries);
}
BENCHMARK(BM_Dir_Load1M)->Unit(benchmark::kMillisecond)->UseRealTime();

// BM_Dir_Lookup - hit:1 random entries (mixed case), hit:0 absent ones;
// keys:65536 spreads probes over the whole table (each lookup waits for
// DRAM), keys:256 keeps the touched slots and keys cache-resident.
void BM_Dir_Lookup(benchmark::State &state)
{
    const struct dir *d = bench_dir();
    bool hit = state.range(0) != 0;
    size_t nkeys = size_t(state.range(1));
    std::vector<char> keys(nkeys * kKeyStride);  // flat, read sequentially
    std::vector<size_t> lens(nkeys);
    uint64_t x = 2463534242ULL;
    for (size_t i = 0; i < nkeys; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        std::string a = bench_addr(unsigned(x % kEntries), !hit, i & 1);
        std::memcpy(&keys[i * kKeyStride], a.data(), a.size());
        lens[i] = a.size();
    }
    enum dir_kind want = hit ? DIR_USER : DIR_NOT_FOUND;
    size_t i = 0, wrong = 0;
    for (auto _ : state) {
        size_t k = i++ & (nkeys - 1);
        enum dir_kind got = dir_lookup(d, &keys[k * kKeyStride], lens[k]);
        wrong += got != want;
        benchmark::DoNotOptimize(got);
    }
    if (wrong)
        state.SkipWithError("lookup returned the wrong kind");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Dir_Lookup)
    ->ArgNames({"hit", "keys"})
    ->Args({1, 1 << 16})->Args({0, 1 << 16})->Args({1, 1 << 8})->Args({0, 1 << 8});

}  // namespace
