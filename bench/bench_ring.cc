// bench_ring.cc - receivelog benchmarks: the producer cost of one typical
// 40-byte line (flusher running, writing a real temp file), end-to-end
// lines/s until flushed, the flusher alone, and side by side the same lines
// through spdlog's async logger (basic file sink, same pattern) and through
// fprintf under a mutex. Files live in a temp folder removed at exit.
#include <benchmark/benchmark.h>

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include "rlog.h"

namespace {

constexpr char kLine[] = "250 <someone@example.test>... Sender ok.";   // 40 bytes
constexpr size_t kLineLen = sizeof(kLine) - 1;
static_assert(kLineLen == 40, "a typical 40-byte line");
constexpr uint32_t kSid = 0x00145008;
constexpr int kProduceIters = 1 << 18;     // per thread and run: fits the queues below
constexpr size_t kRingBytes = 32u << 20;   // 512k records of 64 bytes
constexpr size_t kSpdlogQueue = 1u << 19;  // the same 512k lines
constexpr int kBatch = 1 << 20;            // end-to-end lines per iteration
constexpr int kFlushBatch = 1 << 17;       // flusher-only lines per iteration
constexpr unsigned kMaxThreads = 2;

// rm_tree - remove the temp folder tree.
void rm_tree(const std::string &path)
{
    DIR *d = opendir(path.c_str());
    if (!d) {
        unlink(path.c_str());
        return;
    }
    while (struct dirent *e = readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..")
            continue;
        std::string sub = path + "/" + n;
        struct stat st;
        if (lstat(sub.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(sub);
        else
            unlink(sub.c_str());
    }
    closedir(d);
    rmdir(path.c_str());
}

// truncate_tree - empty every file below path (keeps /tmp small).
void truncate_tree(const std::string &path)
{
    DIR *d = opendir(path.c_str());
    if (!d) {
        truncate(path.c_str(), 0);
        return;
    }
    while (struct dirent *e = readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..")
            truncate_tree(path + "/" + n);
    }
    closedir(d);
}

// TempDir - a mkdtemp folder, removed with its contents at exit.
struct TempDir {
    std::string path;
    TempDir()
    {
        char t[] = "/tmp/mxring-bench-XXXXXX";
        if (!mkdtemp(t))
            abort();
        path = t;
    }
    ~TempDir() { rm_tree(path); }
};

// RlogEnv - one receivelog with a running flusher and one ring per thread.
struct RlogEnv {
    TempDir dir;
    rlog *log = nullptr;
    std::atomic<uint64_t> produced{0};

    explicit RlogEnv(bool start)
    {
        mkdir((dir.path + "/receivelog").c_str(), 0755);
        rlog_opts o{};
        o.workdir = dir.path.c_str();
        o.host = "bench";
        o.nrings = kMaxThreads;
        o.ring_bytes = kRingBytes;
        log = rlog_create(&o);
        if (!log || (start && rlog_start(log) != 0))
            abort();
    }
    ~RlogEnv()
    {
        rlog_stop(log);
        rlog_destroy(log);
    }
    uint64_t written()
    {
        rlog_stats st;
        rlog_get_stats(log, &st);
        return st.lines_written;
    }
    // wait_flushed - until every line produced so far is in the file.
    void wait_flushed()
    {
        while (written() < produced.load())
            sched_yield();
    }
};

RlogEnv &rlog_env()
{
    static RlogEnv env(true);
    return env;
}

// SpdlogEnv - spdlog's async logger on a basic file sink, same line layout.
struct SpdlogEnv {
    TempDir dir;
    std::string file;
    std::shared_ptr<spdlog::logger> log;
    std::atomic<uint64_t> produced{0};

    SpdlogEnv()
    {
        file = dir.path + "/spdlog.log";
        spdlog::init_thread_pool(kSpdlogQueue, 1);
        log = spdlog::create_async<spdlog::sinks::basic_file_sink_mt>("bench", file);
        log->set_pattern(" [%d/%b/%Y:%H:%M:%S], %v");
    }
    ~SpdlogEnv()
    {
        log->flush();
        spdlog::shutdown();
    }
    // wait_flushed - until the file holds every line produced so far.
    void wait_flushed(size_t line_bytes)
    {
        log->flush();
        struct stat st;
        while (stat(file.c_str(), &st) != 0 || (uint64_t)st.st_size < produced.load() * line_bytes)
            sched_yield();
    }
};

SpdlogEnv &spdlog_env()
{
    static SpdlogEnv env;
    return env;
}

constexpr size_t kFileLine = 35 + kLineLen + 1;   // prefix + text + LF

// BM_Ring_ProduceLine - cost of rlog_put() of one 40-byte line.
void BM_Ring_ProduceLine(benchmark::State &state)
{
    RlogEnv &env = rlog_env();
    struct rlog_ring *r = rlog_ring(env.log, (unsigned)state.thread_index());
    if (state.thread_index() == 0) {
        env.wait_flushed();
        truncate_tree(env.dir.path);
    }
    for (auto _ : state)
        rlog_put(r, kSid, RLOG_DIALOG, kLine, kLineLen);
    env.produced += state.iterations();
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Ring_ProduceLine)->Iterations(kProduceIters)->Threads(1)->Threads(2);

// BM_Spdlog_AsyncLogger - the same line through spdlog's async logger.
void BM_Spdlog_AsyncLogger(benchmark::State &state)
{
    SpdlogEnv &env = spdlog_env();
    if (state.thread_index() == 0) {
        env.wait_flushed(kFileLine);
        truncate(env.file.c_str(), 0);
        env.produced = 0;
    }
    for (auto _ : state)
        env.log->info("{:08X}, {}", kSid, kLine);
    env.produced += state.iterations();
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Spdlog_AsyncLogger)->Iterations(kProduceIters)->Threads(1)->Threads(2);

// FprintfEnv - a stdio FILE under one mutex.
struct FprintfEnv {
    TempDir dir;
    FILE *f;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    FprintfEnv() { f = fopen((dir.path + "/fprintf.log").c_str(), "a"); }
    ~FprintfEnv() { fclose(f); }
};

// date_text - " [dd/Mon/yyyy:HH:MM:SS]" of now, cached per thread per second.
const char *date_text()
{
    static thread_local time_t sec = -1;
    static thread_local char text[32];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec != sec) {
        struct tm tm;
        sec = ts.tv_sec;
        localtime_r(&sec, &tm);
        strftime(text, sizeof(text), "%d/%b/%Y:%H:%M:%S", &tm);
    }
    return text;
}

// BM_Fprintf_Mutex - the same line with fprintf under a mutex.
void BM_Fprintf_Mutex(benchmark::State &state)
{
    static FprintfEnv env;
    for (auto _ : state) {
        const char *d = date_text();
        pthread_mutex_lock(&env.mu);
        fprintf(env.f, " [%s], %08X, %s\n", d, kSid, kLine);
        pthread_mutex_unlock(&env.mu);
    }
    if (state.thread_index() == 0) {
        pthread_mutex_lock(&env.mu);
        fflush(env.f);
        ftruncate(fileno(env.f), 0);
        pthread_mutex_unlock(&env.mu);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Fprintf_Mutex)->Iterations(kProduceIters)->Threads(1)->Threads(2);

// BM_Ring_EndToEnd - lines/s from one producer into the file, until flushed.
void BM_Ring_EndToEnd(benchmark::State &state)
{
    RlogEnv &env = rlog_env();
    struct rlog_ring *r = rlog_ring(env.log, 0);
    env.wait_flushed();
    for (auto _ : state) {
        for (int i = 0; i < kBatch; i++)
            rlog_put(r, kSid, RLOG_DIALOG, kLine, kLineLen);
        env.produced += kBatch;
        env.wait_flushed();
        state.PauseTiming();
        truncate_tree(env.dir.path);
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_Ring_EndToEnd)->Unit(benchmark::kMillisecond)->UseRealTime();

// BM_Spdlog_EndToEnd - the same through spdlog, until the file holds it.
void BM_Spdlog_EndToEnd(benchmark::State &state)
{
    SpdlogEnv &env = spdlog_env();
    env.wait_flushed(kFileLine);
    truncate(env.file.c_str(), 0);
    env.produced = 0;
    for (auto _ : state) {
        for (int i = 0; i < kBatch; i++)
            env.log->info("{:08X}, {}", kSid, kLine);
        env.produced += kBatch;
        env.wait_flushed(kFileLine);
        state.PauseTiming();
        truncate(env.file.c_str(), 0);
        env.produced = 0;
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_Spdlog_EndToEnd)->Unit(benchmark::kMillisecond)->UseRealTime();

// BM_Ring_Flusher - the flusher alone: merge, format and write a ring full
// of committed lines (rlog_flush_now on a log without a flusher thread).
void BM_Ring_Flusher(benchmark::State &state)
{
    static RlogEnv env(false);
    struct rlog_ring *r = rlog_ring(env.log, 0);
    for (auto _ : state) {
        state.PauseTiming();
        truncate_tree(env.dir.path);
        for (int i = 0; i < kFlushBatch; i++)
            rlog_put(r, kSid, RLOG_DIALOG, kLine, kLineLen);
        uint64_t before = env.written();
        state.ResumeTiming();
        rlog_flush_now(env.log);
        if (env.written() - before != (uint64_t)kFlushBatch)
            state.SkipWithError("flusher did not write every line");
    }
    state.SetItemsProcessed(state.iterations() * kFlushBatch);
}
BENCHMARK(BM_Ring_Flusher)->Unit(benchmark::kMillisecond);

}  // namespace
