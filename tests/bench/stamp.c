/* The action of trip_latency: appends the time it started (CLOCK_MONOTONIC,
 * ns) as one line to the file argv[1]. Kept to the least work so that what
 * is measured is the daemon's path to the exec, not this program. */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  if (argc < 2) return 2;
  char line[32];
  int len = snprintf(line, sizeof line, "%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
  int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, line, (size_t)len) != len) return 1;
  return close(fd) == 0 ? 0 : 1;
}
