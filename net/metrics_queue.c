/* metrics_queue.c - the scrape-time walk of queue/new/ behind
 * metrics_queue.h: counts the queue files (names of SPOOL_ID_LEN hex
 * digits; temporary and dot files are skipped) and keeps the oldest id's
 * time, stopping after MQ_SCAN_MS. Runs on the metrics thread only. */
#include "metrics_queue.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "spool.h"

/* mono_ms - CLOCK_MONOTONIC milliseconds. */
static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void mq_scan_new(const char *workdir, struct mq_new *out)
{
    *out = (struct mq_new){.complete = true};
    char path[4096];
    snprintf(path, sizeof(path), "%s/queue/new", workdir);
    DIR *dir = opendir(path);
    if (!dir)
        return;
    uint64_t deadline = mono_ms() + MQ_SCAN_MS;
    struct dirent *de;
    for (unsigned n = 0; (de = readdir(dir)) != NULL; n++) {
        if ((n & 255) == 255 && mono_ms() >= deadline) {
            out->complete = false;
            break;
        }
        if (strlen(de->d_name) != SPOOL_ID_LEN)
            continue;
        int64_t t = spool_id_time_us(de->d_name);
        if (t < 0)
            continue;
        out->files++;
        if (out->oldest_us == 0 || t < out->oldest_us)
            out->oldest_us = t;
    }
    closedir(dir);
}
