/* Copy floors for bench/broker_bench.py: what moving bytes costs on this machine with no broker at all.
 * Built and run by broker_bench.py (cc -O2 floors.c -o floors -lpthread); prints one JSON line.
 *   memcpy   memcpy of 16 KiB, 64 KiB, 256 KiB and 1 MiB blocks (source and destination buffers of 64 MiB,
 *            walked in order, so the big ones come from memory rather than cache), CPU s/GB of one thread
 *   unix     a socketpair(AF_UNIX, SOCK_STREAM): one thread writes 64 KiB chunks, the other reads them
 *   tcp      the same over loopback TCP (127.0.0.1), 1 MiB socket buffers
 * For the sockets the sender's and the receiver's CPU (CLOCK_THREAD_CPUTIME_ID) are reported apart:
 * a broker pays the receiver's share on produce and the sender's share on consume.
 *   file     (floors --file DIR [MB]) write() of 1 MiB chunks into a new file in DIR, then unlink it: the
 *            page-cache copy a broker pays per byte produced. On a virtual machine the first write into
 *            memory the guest never touched also pays the host's page faults, several times the copy
 *            itself; broker_bench runs it once before the broker starts (that warms the guest's memory and
 *            measures the cold figure) and once at the end (the warm figure).
 * Usage: floors [MB per measurement, default 1024]. GB = 10^9 bytes. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long total_bytes;
enum { CHUNK = 64 * 1024 };

struct side { int fd; double cpu, wall; };

static void* writer(void* arg) {
  struct side* s = arg;
  char* buf = malloc(CHUNK);
  memset(buf, 'x', CHUNK);
  double c0 = now(CLOCK_THREAD_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
  long long left = total_bytes;
  while (left > 0) {
    ssize_t n = write(s->fd, buf, left < CHUNK ? (size_t)left : CHUNK);
    if (n <= 0) { perror("write"); exit(1); }
    left -= n;
  }
  s->cpu = now(CLOCK_THREAD_CPUTIME_ID) - c0;
  s->wall = now(CLOCK_MONOTONIC) - w0;
  free(buf);
  return NULL;
}

static void* reader(void* arg) {
  struct side* s = arg;
  char* buf = malloc(CHUNK);
  double c0 = now(CLOCK_THREAD_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
  long long left = total_bytes;
  while (left > 0) {
    ssize_t n = read(s->fd, buf, CHUNK);
    if (n <= 0) { perror("read"); exit(1); }
    left -= n;
  }
  s->cpu = now(CLOCK_THREAD_CPUTIME_ID) - c0;
  s->wall = now(CLOCK_MONOTONIC) - w0;
  free(buf);
  return NULL;
}

static void stream(const char* name, int wfd, int rfd, int comma) {
  struct side w = {wfd, 0, 0}, r = {rfd, 0, 0};
  pthread_t tw, tr;
  pthread_create(&tr, NULL, reader, &r);
  pthread_create(&tw, NULL, writer, &w);
  pthread_join(tw, NULL);
  pthread_join(tr, NULL);
  double gb = (double)total_bytes / 1e9;
  printf("%s\"%s\":{\"send_cpu_s_per_gb\":%.4f,\"recv_cpu_s_per_gb\":%.4f,\"gb_per_s\":%.3f}", comma ? "," : "",
         name, w.cpu / gb, r.cpu / gb, gb / r.wall);
}

static int file_floor(const char* dir, long long mb) {
  char path[4096];
  snprintf(path, sizeof path, "%s/floors-file.%d", dir, (int)getpid());
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) { perror(path); return 1; }
  enum { BLOCK = 1 << 20 };
  char* buf = malloc(BLOCK);
  memset(buf, 'f', BLOCK);
  long long total = mb * 1000000LL, done = 0;
  double c0 = now(CLOCK_PROCESS_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
  while (done < total) {
    ssize_t n = write(fd, buf, BLOCK);
    if (n <= 0) { perror("write"); return 1; }
    done += n;
  }
  double cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0, wall = now(CLOCK_MONOTONIC) - w0;
  close(fd);
  unlink(path);
  free(buf);
  printf("{\"mb\":%lld,\"file_write_cpu_s_per_gb\":%.4f,\"gb_per_s\":%.3f}\n", mb, cpu / ((double)done / 1e9),
         (double)done / 1e9 / wall);
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 2 && strcmp(argv[1], "--file") == 0) return file_floor(argv[2], argc > 3 ? atoll(argv[3]) : 1024);
  long long mb = argc > 1 ? atoll(argv[1]) : 1024;
  total_bytes = mb * 1000000LL;
  printf("{\"mb\":%lld,\"memcpy\":{", mb);
  const size_t arena = 64u << 20;
  char* src = malloc(arena);
  char* dst = malloc(arena);
  memset(src, 1, arena);
  memset(dst, 2, arena);
  size_t sizes[] = {16u << 10, 64u << 10, 256u << 10, 1u << 20};
  for (int i = 0; i < 4; ++i) {
    size_t bs = sizes[i], off = 0;
    long long done = 0;
    double c0 = now(CLOCK_THREAD_CPUTIME_ID);
    while (done < total_bytes) {
      if (off + bs > arena) off = 0;
      memcpy(dst + off, src + off, bs);
      off += bs;
      done += (long long)bs;
    }
    double cpu = now(CLOCK_THREAD_CPUTIME_ID) - c0;
    volatile char sink = dst[(size_t)done % arena];
    (void)sink;
    printf("%s\"%zu\":%.4f", i ? "," : "", bs, cpu / ((double)done / 1e9));
  }
  printf("}");
  free(src);
  free(dst);

  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0) { perror("socketpair"); return 1; }
  stream("unix", sp[0], sp[1], 1);
  close(sp[0]);
  close(sp[1]);

  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(ls, (struct sockaddr*)&a, sizeof a) != 0 || listen(ls, 1) != 0 ||
      getsockname(ls, (struct sockaddr*)&a, &len) != 0) { perror("listen"); return 1; }
  int c = socket(AF_INET, SOCK_STREAM, 0);
  int buf = 1 << 20;
  setsockopt(c, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  if (connect(c, (struct sockaddr*)&a, sizeof a) != 0) { perror("connect"); return 1; }
  int s = accept(ls, NULL, NULL);
  setsockopt(s, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  stream("tcp", c, s, 1);
  printf("}\n");
  close(c);
  close(s);
  close(ls);
  return 0;
}
