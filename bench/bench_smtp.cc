// bench_smtp.cc - micro-benchmarks of the SMTP parsers: command lines per
// second (verb lookup, MAIL/RCPT paths and parameters), the DATA scanner in
// bytes per second (plain text and dot-stuffed text), and a whole session
// transaction through the state machine without I/O.
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>

extern "C" {
#include "config.h"
#include "dir.h"
#include "session.h"
#include "smtp_data.h"
#include "smtp_parse.h"
// snap.h uses C11 atomics, which C++ cannot include: declare what we use.
struct snap *snap_new(struct config *cfg, struct dir *dir, uint64_t gen);
void snap_unref(struct snap *s);
}

namespace {

const char *const kLines[] = {
    "EHLO client.example.org",
    "MAIL FROM:<sender@example.org> SIZE=4096 BODY=8BITMIME",
    "RCPT TO:<user@example.test>",
    "RCPT TO:<\"quoted user\"@example.test>",
    "DATA",
    "QUIT",
};

void BM_SmtpParse_CommandLines(benchmark::State &state)
{
    size_t i = 0, bytes = 0;
    for (auto _ : state) {
        const char *line = kLines[i++ % (sizeof(kLines) / sizeof(kLines[0]))];
        size_t len = strlen(line), off = 0;
        enum smtp_verb v = smtp_parse_verb(line, len, &off);
        struct smtp_addr a;
        struct smtp_params p;
        if (v == SMTP_VERB_MAIL)
            benchmark::DoNotOptimize(smtp_parse_mail(line + off, len - off, &a, &p));
        else if (v == SMTP_VERB_RCPT)
            benchmark::DoNotOptimize(smtp_parse_rcpt(line + off, len - off, &a, &p));
        else if (v == SMTP_VERB_EHLO)
            benchmark::DoNotOptimize(smtp_parse_helo(line + off, len - off, &off));
        benchmark::DoNotOptimize(v);
        bytes += len + 2;
    }
    state.SetItemsProcessed((int64_t)state.iterations());
    state.SetBytesProcessed((int64_t)bytes);
}
BENCHMARK(BM_SmtpParse_CommandLines);

// message - a 1 MiB body of 76-octet lines; every stuffed-th line starts
// with a (stuffed) dot.
std::string message(int stuffed)
{
    std::string m;
    for (int i = 0; m.size() < (1u << 20); i++) {
        if (stuffed && i % stuffed == 0)
            m += "..";
        m += std::string(74, 'a' + i % 26) + "\r\n";
    }
    return m + ".\r\n";
}

void scan(benchmark::State &state, const std::string &m)
{
    struct sb out = {};
    for (auto _ : state) {
        struct data_scan ds;
        data_scan_init(&ds, 0);
        bool done = false;
        sb_reset(&out);
        size_t used = data_scan_feed(&ds, m.data(), m.size(), &out, &done);
        benchmark::DoNotOptimize(used);
        if (!done)
            state.SkipWithError("end of data not found");
    }
    state.SetBytesProcessed((int64_t)(state.iterations() * m.size()));
    sb_free(&out);
}

void BM_SmtpParse_DataScan(benchmark::State &state) { scan(state, message(0)); }
BENCHMARK(BM_SmtpParse_DataScan);

void BM_SmtpParse_DataScanDotStuffed(benchmark::State &state) { scan(state, message(2)); }
BENCHMARK(BM_SmtpParse_DataScanDotStuffed);

// BM_SmtpParse_SessionTransaction - one pipelined transaction (MAIL, RCPT,
// DATA, 4 KiB body, end of data, spool answer) through the state machine.
void BM_SmtpParse_SessionTransaction(benchmark::State &state)
{
    static const char conf[] = "hostname = mx.bench\nworkdir = /tmp\nlisten = 127.0.0.1:25\n"
                               "local_domains = example.test\n";
    char err[256];
    struct config *c = cfg_load_string("bench", conf, sizeof(conf) - 1, err, sizeof(err));
    struct dir *d = dir_load(nullptr, nullptr, nullptr, nullptr, err, sizeof(err));
    struct snap *sn = snap_new(c, d, 1);
    struct sess_env env = {};
    struct sess *s = sess_new(&env, sn, 1, nullptr, 25);
    sess_start(s);
    const char *ehlo = "EHLO bench.example\r\n";
    sess_input(s, ehlo, strlen(ehlo));
    std::string txn = "MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\n";
    std::string body;
    while (body.size() < 4096)
        body += "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod te\r\n";
    body += ".\r\n";
    for (auto _ : state) {
        sess_input(s, txn.data(), txn.size());
        sess_input(s, body.data(), body.size());
        sess_spool_done(s, 0, "BENCH");
        sb_reset(sess_out(s));
    }
    state.SetItemsProcessed((int64_t)state.iterations());
    sess_free(s);
    snap_unref(sn);
}
BENCHMARK(BM_SmtpParse_SessionTransaction);

} // namespace
