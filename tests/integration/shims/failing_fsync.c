// LD_PRELOAD shim for fault tests: while the file named by $FAILING_FSYNC_TRIGGER exists, fdatasync and
// fsync on files under $FAILING_FSYNC_DIR fail with EIO, as a dying disk answers; with $SLOW_FSYNC_MS
// set they succeed instead, after that many milliseconds, as a slow disk does. The kernel on these
// machines has no device-mapper (dm-error, dm-flakey), so this is how a real broker process meets a
// failing fsync. Built by the test that uses it; never part of Bulwark.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int affected(int fd) {
  const char* trigger = getenv("FAILING_FSYNC_TRIGGER");
  const char* dir = getenv("FAILING_FSYNC_DIR");
  if (!trigger || !dir || access(trigger, F_OK) != 0) return 0;
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = '\0';
  return strncmp(path, dir, strlen(dir)) == 0;
}

// 1: answer EIO. 0: go on to the real call (after the delay, for a slow disk).
static int should_fail(int fd) {
  if (!affected(fd)) return 0;
  const char* slow = getenv("SLOW_FSYNC_MS");
  if (!slow) return 1;
  usleep((useconds_t)atoi(slow) * 1000u);
  return 0;
}

int fdatasync(int fd) {
  static int (*real)(int) = NULL;
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  if (should_fail(fd)) {
    errno = EIO;
    return -1;
  }
  return real(fd);
}

int fsync(int fd) {
  static int (*real)(int) = NULL;
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  if (should_fail(fd)) {
    errno = EIO;
    return -1;
  }
  return real(fd);
}
