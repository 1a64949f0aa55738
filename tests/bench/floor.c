/* The floor for a mysql_status check: the least a client can do to read
 * status values with the same client library (libmariadb) on one
 * persistent connection, paced like wardend's checks.
 *
 *   floor --socket PATH --user U --password-file F --checks N --seconds S
 *         --mode per-check|shared|loop [--every-ms 1000] [--window-ms 100]
 *
 * per-check: every check runs its own `SHOW GLOBAL STATUS LIKE 'name'`
 *   (N queries per interval, spread evenly) and reads the one row.
 * shared: what wardend did with shared reads: one `SHOW GLOBAL STATUS`
 *   per window (window-ms), all rows read, each check due in that window
 *   looks its variable up (case-insensitive, like wardend).
 * filtered: the least a reader of shared snapshots can ask of the server:
 *   the same, with only the names the checks need (`SHOW GLOBAL STATUS
 *   WHERE Variable_name IN (...)`, or every row past 128 names, where that
 *   is cheaper for the server), run with --window-ms = every: one read per
 *   cadence tick for all the checks.
 * filtered-loop: the same on libev's loop with the non-blocking API (as
 *   loop does it).
 * loop: the same work done as wardend does it, on libev's default loop
 *   with the client library's non-blocking API: a repeating ev_timer per
 *   window, mysql_real_query_start / mysql_store_result_start and their
 *   _cont under an ev_io, a query-timeout ev_timer. What an event loop
 *   costs by itself, without wardend's scheduler, checks and evaluator.
 *
 * The N variable names are the first N of SHOW GLOBAL STATUS (repeated when
 * N is larger), as in check_cost.py. Prints one line of key=value pairs:
 * checks=… queries=… cpu_s=… (this process's getrusage user+system over
 * the measured seconds, after a 1 s warm-up) wall_s=…. Exit 1 on any error. */
#define _GNU_SOURCE
#include <errno.h>
#include <ev.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

static double now_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_self(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void sleep_until(double t) {
  double d = t - now_mono();
  if (d <= 0) return;
  struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void die(MYSQL* m, const char* what) {
  fprintf(stderr, "floor: %s: %s\n", what, m ? mysql_error(m) : "");
  exit(1);
}

/* The checks due in one window look their variable up in `res` (all rows
 * read): each at the row its name came from (the server's order is
 * stable), with a scan only if that row no longer matches. */
static void serve_window(MYSQL_RES* res, MYSQL_ROW* table, int rows, char** names, int n,
                         long tick, long per_window, long* checks, long* found) {
  int got = (int)mysql_num_rows(res);
  for (int r = 0; r < got && r < rows; ++r) table[r] = mysql_fetch_row(res);
  long first = ((tick * per_window) % n + n) % n;
  for (long c = 0; c < per_window; ++c) {
    long i = (first + c) % n;
    int r = (int)(i % rows);
    if (r < got && strcasecmp(table[r][0], names[i]) == 0) {
      ++*found;
    } else {
      for (r = 0; r < got && r < rows; ++r)
        if (strcasecmp(table[r][0], names[i]) == 0) {
          ++*found;
          break;
        }
    }
    ++*checks;
  }
}

/* The shared read's statement: every row, or (filtered) the names needed. */
static char* status_sql = "SHOW GLOBAL STATUS";

/* --mode loop: the state of the one read in flight. */
static struct {
  struct ev_loop* loop;
  ev_timer tick_timer, timeout;
  ev_io io;
  MYSQL* m;
  MYSQL_RES* res;
  int rc, storing, waiting;
  MYSQL_ROW* table;
  char** names;
  int rows, n;
  long tick, per_window, checks, found, queries;
  double start, end, cpu0;
  int measuring;
} L;

static void loop_fail(const char* what) {
  fprintf(stderr, "floor: %s: %s\n", what, mysql_error(L.m));
  exit(1);
}

/* Calls the library until it must wait (arms the watchers) or the read is
 * done. `ready`: what the wait saw, 0 to start a stage. */
static void loop_advance(int ready) {
  for (;;) {
    int status;
    if (!L.storing) {
      status = L.waiting ? mysql_real_query_cont(&L.rc, L.m, ready)
                         : mysql_real_query_start(&L.rc, L.m, status_sql,
                                                  (unsigned long)strlen(status_sql));
    } else {
      status = L.waiting ? mysql_store_result_cont(&L.res, L.m, ready)
                         : mysql_store_result_start(&L.res, L.m);
    }
    if (status) {
      int events = ((status & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT)) ? EV_READ : 0) |
                   ((status & MYSQL_WAIT_WRITE) ? EV_WRITE : 0);
      int fd = (int)mysql_get_socket(L.m);
      if (!ev_is_active(&L.io) || L.io.fd != fd || L.io.events != events) {
        ev_io_stop(L.loop, &L.io);
        ev_io_set(&L.io, fd, events);
        ev_io_start(L.loop, &L.io);
      }
      ev_timer_stop(L.loop, &L.timeout);
      ev_timer_set(&L.timeout, 5.0, 0);
      ev_timer_start(L.loop, &L.timeout);
      L.waiting = 1;
      return;
    }
    L.waiting = 0;
    ready = 0;
    if (!L.storing) {
      if (L.rc) loop_fail(status_sql);
      L.storing = 1;
      continue;
    }
    ev_timer_stop(L.loop, &L.timeout);
    if (!L.res) loop_fail("store");
    ++L.queries;
    serve_window(L.res, L.table, L.rows, L.names, L.n, L.tick, L.per_window, &L.checks, &L.found);
    mysql_free_result(L.res);
    L.res = NULL;
    return;
  }
}

static void loop_on_io(struct ev_loop* loop, ev_io* w, int revents) {
  (void)loop;
  (void)w;
  loop_advance(((revents & EV_READ) ? MYSQL_WAIT_READ : 0) |
               ((revents & EV_WRITE) ? MYSQL_WAIT_WRITE : 0));
}

static void loop_on_timeout(struct ev_loop* loop, ev_timer* w, int revents) {
  (void)loop;
  (void)w;
  (void)revents;
  loop_fail("query timeout");
}

static void loop_on_tick(struct ev_loop* loop, ev_timer* w, int revents) {
  (void)w;
  (void)revents;
  double now = ev_now(loop);
  if (now >= L.end) {
    ev_break(loop, EVBREAK_ALL);
    return;
  }
  if (!L.measuring && now >= L.start) {
    L.measuring = 1;
    L.cpu0 = cpu_self();
    L.checks = L.queries = L.found = 0;
  }
  if (L.waiting) return;  /* the last read is still in flight: skip a window */
  ++L.tick;
  L.storing = 0;
  loop_advance(0);
}

static const char* arg(int argc, char** argv, const char* name, const char* def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (strcmp(argv[i], name) == 0) return argv[i + 1];
  return def;
}

int main(int argc, char** argv) {
  const char* sock = arg(argc, argv, "--socket", NULL);
  const char* user = arg(argc, argv, "--user", "warden");
  const char* pwfile = arg(argc, argv, "--password-file", NULL);
  int n = atoi(arg(argc, argv, "--checks", "100"));
  double seconds = atof(arg(argc, argv, "--seconds", "10"));
  const char* mode = arg(argc, argv, "--mode", "per-check");
  double every = atof(arg(argc, argv, "--every-ms", "1000")) / 1000.0;
  double window = atof(arg(argc, argv, "--window-ms", "100")) / 1000.0;
  int filtered_loop = strcmp(mode, "filtered-loop") == 0;
  int filtered = strcmp(mode, "filtered") == 0 || filtered_loop;
  int shared = strcmp(mode, "shared") == 0 || strcmp(mode, "filtered") == 0;
  int loop = strcmp(mode, "loop") == 0 || filtered_loop;
  if (!sock || !pwfile || n <= 0) {
    fprintf(stderr, "usage: floor --socket PATH --password-file F --checks N [...]\n");
    return 2;
  }
  char password[256] = "";
  FILE* pf = fopen(pwfile, "r");
  if (!pf || !fgets(password, sizeof password, pf)) die(NULL, "cannot read the password file");
  fclose(pf);
  password[strcspn(password, "\r\n")] = 0;

  MYSQL* m = mysql_init(NULL);
  unsigned protocol = MYSQL_PROTOCOL_SOCKET;
  mysql_optionsv(m, MYSQL_OPT_PROTOCOL, &protocol);
  if (loop) mysql_options(m, MYSQL_OPT_NONBLOCK, 0);
  if (!mysql_real_connect(m, "localhost", user, password, NULL, 0, sock, 0)) die(m, "connect");

  /* The variable names: the first n of SHOW GLOBAL STATUS, repeated. */
  if (mysql_query(m, "SHOW GLOBAL STATUS")) die(m, "SHOW GLOBAL STATUS");
  MYSQL_RES* res = mysql_store_result(m);
  if (!res) die(m, "store");
  int rows = (int)mysql_num_rows(res);
  char** names = calloc((size_t)n, sizeof *names);
  char** queries = calloc((size_t)n, sizeof *queries);
  for (int i = 0; i < n; ++i) {
    mysql_data_seek(res, (unsigned long long)(i % rows));
    MYSQL_ROW row = mysql_fetch_row(res);
    names[i] = strdup(row[0]);
    if (asprintf(&queries[i], "SHOW GLOBAL STATUS LIKE '%s'", row[0]) < 0) die(NULL, "oom");
  }
  mysql_free_result(res);
  MYSQL_ROW* table = calloc((size_t)rows, sizeof *table);
  /* filtered: the distinct names (the first min(n, rows) of the server's
   * order, so the answer's row i is check i's), or every row past 128. */
  int distinct = n < rows ? n : rows;
  if (filtered && distinct <= 128) {
    size_t len = 64;
    for (int i = 0; i < distinct; ++i) len += strlen(names[i]) + 3;
    status_sql = malloc(len);
    strcpy(status_sql, "SHOW GLOBAL STATUS WHERE Variable_name IN (");
    for (int i = 0; i < distinct; ++i) {
      strcat(status_sql, i ? ",'" : "'");
      strcat(status_sql, names[i]);
      strcat(status_sql, "'");
    }
    strcat(status_sql, ")");
  }

  if (loop) {
    L.loop = EV_DEFAULT;
    L.m = m;
    L.table = table;
    L.names = names;
    L.rows = rows;
    L.n = n;
    L.per_window = (long)((double)n * window / every + 0.5);
    L.tick = -1;
    ev_init(&L.io, loop_on_io);
    ev_init(&L.timeout, loop_on_timeout);
    ev_now_update(L.loop);
    L.start = ev_now(L.loop) + 1.0;  /* the first second is warm-up */
    L.end = L.start + seconds;
    ev_timer_init(&L.tick_timer, loop_on_tick, window, window);
    ev_timer_start(L.loop, &L.tick_timer);
    ev_run(L.loop, 0);
    double cpu = cpu_self() - L.cpu0;
    if (L.found != L.checks) {
      fprintf(stderr, "floor: %ld of %ld checks found their variable\n", L.found, L.checks);
      return 1;
    }
    printf("checks=%ld queries=%ld cpu_s=%.6f wall_s=%.3f\n", L.checks, L.queries, cpu,
           ev_now(L.loop) - L.start);
    mysql_close(m);
    return 0;
  }

  /* Check i is due at start + i*every/n + k*every (spread like jitter 100%). */
  long checks = 0, queries_run = 0, found = 0;
  double start = now_mono() + 1.0;  /* the first second is warm-up */
  double cpu0 = 0;
  int measuring = 0;
  double end = start + seconds;
  double step = shared ? window : every / n;
  long tick = -(long)(1.0 / step);  /* warm-up ticks */
  for (;; ++tick) {
    double due = start + (double)tick * step;
    if (due >= end) break;
    sleep_until(due);
    if (!measuring && tick >= 0) {
      measuring = 1;
      cpu0 = cpu_self();
      checks = queries_run = found = 0;
    }
    if (!shared) {
      int i = (int)(((tick % n) + n) % n);
      if (mysql_query(m, queries[i])) die(m, queries[i]);
      res = mysql_store_result(m);
      if (!res) die(m, "store");
      MYSQL_ROW row = mysql_fetch_row(res);
      if (row && row[1]) ++found;
      mysql_free_result(res);
      ++queries_run;
      ++checks;
      continue;
    }
    /* shared: the checks due in [due, due + window). */
    long per_window = (long)((double)n * window / every + 0.5);
    if (mysql_query(m, status_sql)) die(m, status_sql);
    res = mysql_store_result(m);
    if (!res) die(m, "store");
    ++queries_run;
    serve_window(res, table, rows, names, n, tick, per_window, &checks, &found);
    mysql_free_result(res);
  }
  double cpu = cpu_self() - cpu0;
  if (found != checks) {
    fprintf(stderr, "floor: %ld of %ld checks found their variable\n", found, checks);
    return 1;
  }
  printf("checks=%ld queries=%ld cpu_s=%.6f wall_s=%.3f\n", checks, queries_run, cpu,
         now_mono() - start);
  mysql_close(m);
  return 0;
}
