/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The supervisor's watch on its helpers' CPU time. Runs in the
 * supervisor process, as httpd's User, once per scan.
 *
 * Whether a run is over cannot be the helper's word: user code runs in
 * the helper's process and can write to its connection as well as the
 * helper can, a RESULT frame included, and then go on computing with
 * nobody waiting and no deadline. What user code cannot touch is the
 * kernel's count of the CPU time its process used, and the registry's
 * count of the time its session had requests in flight, which workers
 * keep (pyexec_reg_count_in / _out). A helper has one thread
 * (RLIMIT_NPROC 0), so an honest one never uses more CPU than that
 * time. Scan by scan, what a helper used beyond its time in flight is
 * its debt; time in flight it did not use is not credit for later (a
 * session that slept for ten minutes must not buy ten minutes of
 * computing after a forged answer), and the debt drains slowly, so that
 * the grain of the two clocks and a helper's own upkeep between
 * requests never add up over a long life. A helper in debt by
 * CPU_SLACK_US is running code nobody asked for: it is killed and its
 * session ends as a timeout, counted on the status page. A run still in
 * flight is the worker's to bound (its deadline); this bounds what comes
 * after a forged answer.
 *
 * The CPU time is /proc/<pid>/schedstat's, in nanoseconds, readable by
 * every user; each helper's is taken when it reports READY, so that the
 * interpreter's start costs it nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "pyexec_private.h"
#include "pyexec_io.h"
#include "pyexec_state.h"
#include "pyexec_supervisor_proc.h"

/* CPU time a helper may use beyond its session's time in flight: its
 * own upkeep between requests (closing connections, answering SKIPPED)
 * takes microseconds; this is room for the clocks' grain too. */
#define CPU_SLACK_US 100000
/* Forgiven per scan (200 ms): at most half a percent of a CPU, which is
 * all a forger can keep. */
#define CPU_DRAIN_US 1000

/* CPU time used by pid in usec, or -1 if it cannot be read (gone). */
static int64_t cpu_usec(pid_t pid)
{
    char path[64], buf[128];
    unsigned long long ns;
    int fd;
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    if (sscanf(buf, "%llu", &ns) != 1) {
        return -1;
    }
    return (int64_t)(ns / 1000);
}

void pyexec_sup_cpu_init(pyexec_sup_t *sup)
{
    sup->cpu = apr_pcalloc(sup->pool, sup->reg->nslots * sizeof(*sup->cpu));
}

void pyexec_sup_cpu_ready(pyexec_sup_t *sup, uint32_t idx, uint32_t gen,
                          pid_t pid)
{
    pyexec_cpu_watch_t *w;

    if (idx >= sup->reg->nslots) {
        return;
    }
    w = &sup->cpu[idx];
    w->gen = gen;
    w->pid = pid;
    w->last_cpu = cpu_usec(pid);
    w->last_busy = 0;           /* a new helper has run nothing */
    w->debt = 0;
}

void pyexec_sup_cpu_scan(pyexec_sup_t *sup)
{
    pyexec_registry_t *reg = sup->reg;

    /* One helper at a time, under the lock: its CPU time and its
     * session's time in flight are read together. Read at different
     * moments, a run's CPU time would fall into one scan and its time in
     * flight into the one before, and no debt can give back what the
     * scan before did not use. */
    for (uint32_t i = 0; i < reg->nslots; i++) {
        pyexec_cpu_watch_t *w = &sup->cpu[i];
        const pyexec_slot_t *s;
        int64_t now_cpu, busy, over = 0;
        int err;

        if (pyexec_lock() != APR_SUCCESS) {
            return;
        }
        s = pyexec_reg_slot(reg, (int32_t)i);
        if ((s->state != PYEXEC_SLOT_SPARE && s->state != PYEXEC_SLOT_LIVE)
            || s->pid <= 0) {
            pyexec_unlock();
            continue;
        }
        if (w->gen != s->gen || w->pid != s->pid) {
            /* its READY went by unseen: count from now */
            w->gen = s->gen;
            w->pid = s->pid;
            w->last_cpu = -1;
            w->debt = 0;
        }
        now_cpu = cpu_usec(w->pid);
        err = errno;
        busy = pyexec_reg_busy_usec(reg, (int32_t)i, w->gen,
                                    pyexec_now_usec());
        if (now_cpu >= 0) {
            if (w->last_cpu >= 0) {
                w->debt += (now_cpu - w->last_cpu) - (busy - w->last_busy)
                           - CPU_DRAIN_US;
                if (w->debt < 0) {
                    w->debt = 0;
                }
            }
            w->last_cpu = now_cpu;
            w->last_busy = busy;
            if (w->debt > CPU_SLACK_US
                && pyexec_reg_end_overrun(reg, (int32_t)i, w->gen) > 0) {
                over = w->debt;
            }
        }
        pyexec_unlock();

        if (over > 0) {
            /* still our unreaped child: the pid cannot have been reused */
            kill(w->pid, SIGKILL);
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, sup->s,
                         PYEXEC_LOGNO(00250) "the helper of slot %u used %"
                         APR_INT64_T_FMT " ms more CPU time than its "
                         "session had requests in flight (its code "
                         "answered for it and went on): killed, the "
                         "session ends as a timeout", i, over / 1000);
        }
        else if (now_cpu < 0 && !sup->cpu_unreadable) {
            /* a live child whose CPU time is hidden from us (a /proc
             * mounted hidepid=, a kernel without schedstat) */
            sup->cpu_unreadable = 1;
            ap_log_error(APLOG_MARK, APLOG_WARNING, err, sup->s,
                         PYEXEC_LOGNO(00251) "cannot read the CPU time of "
                         "helper %d (/proc/%d/schedstat): the CPU watch is "
                         "off, and a helper whose code answers for it may "
                         "compute until RLIMIT_CPU", (int)w->pid,
                         (int)w->pid);
        }
    }
}
